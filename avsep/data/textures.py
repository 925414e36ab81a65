"""Random pictures of nothing: procedural textures shown as silent tiles of composed views.

On held-out scenes the energy maps' peak missed the players mostly on things a model had never
seen: a wallpaper's hexagons or galaxy, a lamp or a door in an instrument's colour
(docs/benchmarks.md). A training set has a few dozen backgrounds; these pictures are endless.
Shown in a quadrant of a composed view as a video whose sound is not in the mixture
(``augment.SILENT``), the per-pixel loss teaches that colours, shapes and patterns alone make
no sound. Nothing here depends on how the generated scenes are drawn, so it applies to
training on real videos as it does to generated ones.

A texture is a smooth colour field, maybe overlaid by a periodic pattern (stripes, checks,
hexagons or dots), then maybe some flat shapes (ellipses, rectangles, polygons) in random
colours, and maybe blurred.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PATTERNS = ("stripes", "checks", "hexagons", "dots")


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """An RGB colour in [0, 255], (3,), of any hue, saturation and value (value at least 0.15)."""
    hue = rng.uniform(0, 6)
    channel = np.clip(np.abs(((hue + np.array([0.0, 4.0, 2.0])) % 6) - 3) - 1, 0, 1)  # HSV -> RGB at S=V=1
    value, saturation = rng.uniform(0.15, 1.0), rng.uniform(0.0, 1.0)
    return 255 * value * (1 - saturation + saturation * channel)


def colour_field(size: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth field of random colours, (size, size, 3) float: a coarse grid of 1 to 6 cells a
    side, each one of 2 or 3 colours, upsampled bicubically."""
    cells = int(rng.integers(1, 7))
    palette = np.stack([random_colour(rng) for _ in range(int(rng.integers(2, 4)))])
    coarse = palette[rng.integers(len(palette), size=(cells, cells))]
    channels = [Image.fromarray(coarse[..., c].astype(np.float32), mode="F").resize((size, size), Image.BICUBIC)
                for c in range(3)]
    return np.stack([np.asarray(c) for c in channels], axis=-1)


def pattern(size: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A periodic pattern in [0, 1], (size, size): ``kind`` one of :data:`PATTERNS`, at a random
    period (4 to 40 pixels) and angle."""
    period, angle = rng.uniform(4, 40), rng.uniform(0, np.pi)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32)

    def grating(theta: float) -> np.ndarray:
        return np.cos(2 * np.pi * (x * np.cos(theta) + y * np.sin(theta)) / period)

    if kind == "stripes":
        wave = grating(angle)
    elif kind == "checks":
        wave = grating(angle) * grating(angle + np.pi / 2)
    else:  # three gratings 60 degrees apart: a hexagonal lattice of blobs
        wave = sum(grating(angle + k * np.pi / 3) for k in range(3)) / 3
    sharp = rng.random() < 0.5
    if kind == "dots":
        return (wave > 0.6).astype(np.float32)
    return (wave > 0).astype(np.float32) if sharp else (wave + 1) / 2


def draw_shapes(image: Image.Image, count: int, rng: np.random.Generator) -> None:
    """Draw ``count`` flat ellipses, rectangles or polygons of 5-50% of the side, in place."""
    draw, side = ImageDraw.Draw(image), image.width
    for _ in range(count):
        w, h = rng.uniform(0.05, 0.5, 2) * side
        cx, cy = rng.uniform(0, side, 2)
        fill = tuple(int(c) for c in random_colour(rng))
        kind = rng.integers(3)
        if kind == 0:
            draw.ellipse((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), fill=fill)
        elif kind == 1:
            draw.rectangle((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), fill=fill)
        else:
            angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 7))))
            draw.polygon([(float(cx + w / 2 * np.cos(a)), float(cy + h / 2 * np.sin(a))) for a in angles], fill=fill)


def random_texture(size: int, rng: np.random.Generator) -> Image.Image:
    """A random RGB picture of ``size`` x ``size`` pixels that shows nothing in particular."""
    rgb = colour_field(size, rng)
    if rng.random() < 0.6:
        weight = pattern(size, PATTERNS[int(rng.integers(len(PATTERNS)))], rng)[..., None]
        rgb = rgb * (1 - weight) + colour_field(size, rng) * weight
    image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
    if rng.random() < 0.7:
        draw_shapes(image, int(rng.integers(1, 9)), rng)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.0))))
    return image
