"""Drawn rooms: wall and floor with textures, a window, furniture, and uneven light.

Used inside photo scenes (a room whose window shows a photograph) and alone when no photograph
is installed. The two pools draw from different palettes and textures, so held-out rooms do not
look like training rooms either. Images are RGB ``PIL.Image``; sizes are ``(width, height)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from avsep.synth.seeds import check_pool

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class RoomStyle:
    walls: tuple[RGB, ...]
    wall_textures: tuple[str, ...]
    floors: tuple[RGB, ...]
    floor_textures: tuple[str, ...]
    furniture: tuple[str, ...]


STYLES = {
    "train": RoomStyle(walls=((226, 207, 180), (200, 170, 140), (170, 190, 160), (235, 225, 205), (190, 120, 90)),
                       wall_textures=("plaster", "stripes", "panels"),
                       floors=((120, 80, 50), (150, 105, 65), (95, 65, 45)),
                       floor_textures=("planks", "rug"),
                       furniture=("shelf", "table", "sofa", "frame")),
    "test": RoomStyle(walls=((150, 160, 175), (205, 210, 215), (120, 140, 160), (230, 232, 235), (90, 100, 110)),
                      wall_textures=("bricks", "tiles", "plaster"),
                      floors=((110, 110, 115), (70, 80, 95), (160, 150, 140)),
                      floor_textures=("carpet", "checker"),
                      furniture=("cabinet", "curtain", "desk", "frame")),
}


def _jitter(color: RGB, rng: np.random.Generator, amount: float = 25) -> RGB:
    return tuple(int(np.clip(c + rng.uniform(-amount, amount), 0, 255)) for c in color)


def _shade(color: RGB, factor: float) -> RGB:
    return tuple(int(np.clip(c * factor, 0, 255)) for c in color)


def _wall_texture(d: ImageDraw.ImageDraw, kind: str, w: int, h: int, color: RGB, rng: np.random.Generator) -> None:
    """Stripes, panels, bricks or tiles over the wall ``[0, w) x [0, h)``; plaster is left to the grain."""
    if kind == "stripes":
        step = int(rng.integers(8, 24))
        for x in range(0, w, 2 * step):
            d.rectangle([x, 0, x + step - 1, h], fill=_shade(color, 0.93))
    elif kind == "panels":
        step = int(rng.integers(30, 70))
        for x in range(0, w, step):
            d.rectangle([x + 4, int(h * 0.55), x + step - 4, h - 6], outline=_shade(color, 0.8), width=2)
    elif kind in ("bricks", "tiles"):
        bh = int(rng.integers(8, 16)) if kind == "bricks" else int(rng.integers(16, 36))
        bw = bh * (3 if kind == "bricks" else 1)
        for row, y in enumerate(range(0, h, bh)):
            off = (bw // 2) * (row % 2) if kind == "bricks" else 0
            for x in range(-off, w, bw):
                d.rectangle([x, y, x + bw - 1, y + bh - 1], fill=_jitter(color, rng, 10), outline=_shade(color, 0.75))


def _floor_texture(d: ImageDraw.ImageDraw, kind: str, w: int, top: int, h: int, color: RGB,
                   rng: np.random.Generator) -> None:
    """Planks, checker tiles, a rug or carpet on the floor ``[0, w) x [top, h)``; rows widen
    towards the bottom, a cheap perspective."""
    if kind in ("planks", "checker"):
        y, row, step = float(top), 0, max(3.0, (h - top) / 10)
        while y < h:
            nxt = y + step
            if kind == "planks":
                d.line([0, int(y), w, int(y)], fill=_shade(color, 0.7), width=1)
                for x in rng.uniform(0, w, 3):
                    d.line([int(x), int(y), int(x), int(nxt)], fill=_shade(color, 0.75))
            else:
                cell = int(step * 1.5)
                for k, x in enumerate(range(0, w, cell)):
                    if (k + row) % 2:
                        d.rectangle([x, int(y), x + cell - 1, int(nxt)], fill=_shade(color, 0.6))
            y, row, step = nxt, row + 1, step * 1.25
    elif kind == "rug":
        cx, cy = w * rng.uniform(0.3, 0.7), top + (h - top) * 0.6
        rx, ry = w * rng.uniform(0.2, 0.4), (h - top) * 0.3
        d.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=_jitter((150, 50, 50), rng, 60))


def _furniture(d: ImageDraw.ImageDraw, img: Image.Image, kind: str, w: int, horizon: int, rng: np.random.Generator,
               photo: Callable[[tuple[int, int]], Image.Image] | None) -> None:
    """One piece of furniture standing on the horizon line (or hanging on the wall)."""
    fw = int(w * rng.uniform(0.12, 0.3))
    x0 = int(rng.uniform(0, w - fw))
    wood = _jitter((110, 75, 45), rng, 30)
    if kind in ("shelf", "cabinet"):
        top = int(horizon * rng.uniform(0.2, 0.6))
        d.rectangle([x0, top, x0 + fw, horizon], fill=wood, outline=_shade(wood, 0.6), width=2)
        rows = max(2, (horizon - top) // 25)
        for r in range(1, rows):
            y = top + r * (horizon - top) // rows
            d.line([x0, y, x0 + fw, y], fill=_shade(wood, 0.6), width=2)
            if kind == "shelf":  # book spines
                x = x0 + 3
                while x < x0 + fw - 6:
                    bw = int(rng.integers(3, 8))
                    spine = y - int(rng.integers(10, 20))
                    d.rectangle([x, spine, x + bw, y - 1], fill=_jitter((128, 128, 128), rng, 110))
                    x += bw + 1
    elif kind in ("table", "desk"):
        top = horizon - int(horizon * rng.uniform(0.12, 0.25))
        d.rectangle([x0, top, x0 + fw, top + 6], fill=wood)
        for x in (x0 + 3, x0 + fw - 8):
            d.rectangle([x, top + 6, x + 5, horizon + 8], fill=_shade(wood, 0.8))
    elif kind == "sofa":
        top = horizon - int(horizon * rng.uniform(0.15, 0.3))
        cloth = _jitter((90, 90, 140), rng, 70)
        d.rounded_rectangle([x0, top, x0 + fw, horizon + 10], radius=8, fill=cloth, outline=_shade(cloth, 0.6))
    elif kind == "curtain":
        cloth = _jitter((150, 60, 70), rng, 70)
        d.rectangle([x0, 0, x0 + fw // 2, horizon], fill=cloth)
        for x in range(x0 + 4, x0 + fw // 2, 7):
            d.line([x, 0, x, horizon], fill=_shade(cloth, 0.75), width=2)
    else:  # a framed picture on the wall
        fh = int(fw * rng.uniform(0.6, 1.0))
        y0 = int(rng.uniform(0.05, 0.4) * horizon)
        d.rectangle([x0 - 4, y0 - 4, x0 + fw + 4, y0 + fh + 4], fill=_jitter((170, 140, 60), rng, 50))
        inner = photo((fw, fh)) if photo else Image.new("RGB", (fw, fh), _jitter((120, 150, 180), rng, 60))
        img.paste(inner, (x0, y0))


def _window(img: Image.Image, w: int, horizon: int, rng: np.random.Generator,
            photo: Callable[[tuple[int, int]], Image.Image] | None) -> None:
    """A window in the upper wall: a photograph (or sky) behind a frame with glazing bars."""
    ww, wh = int(w * rng.uniform(0.2, 0.45)), int(horizon * rng.uniform(0.4, 0.7))
    x0, y0 = int(rng.uniform(0, w - ww)), int(rng.uniform(0.05, 0.25) * horizon)
    if photo is not None:
        view = photo((ww, wh))
    else:
        sky = np.linspace(rng.uniform(150, 200), rng.uniform(200, 250), wh)[:, None, None]
        view = Image.fromarray(np.broadcast_to(sky * [0.7, 0.85, 1.0], (wh, ww, 3)).astype(np.uint8))
    img.paste(view, (x0, y0))
    frame = _jitter((235, 235, 230), rng, 20)
    d = ImageDraw.Draw(img)
    bar = max(2, ww // 30)
    d.rectangle([x0, y0, x0 + ww, y0 + wh], outline=frame, width=bar * 2)
    d.line([x0 + ww // 2, y0, x0 + ww // 2, y0 + wh], fill=frame, width=bar)
    d.line([x0, y0 + wh // 2, x0 + ww, y0 + wh // 2], fill=frame, width=bar)


def _light(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Uneven light: a soft brighter spot (a lamp or the window) and grain; RGB."""
    w, h = img.size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy, r = rng.uniform(0, w), rng.uniform(0, h * 0.6), max(w, h) * rng.uniform(0.5, 1.2)
    gain = 0.75 + 0.4 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
    arr = np.asarray(img, np.float32) * gain[..., None] + rng.normal(0, 3, (h, w, 1)).astype(np.float32)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def draw_room(size: tuple[int, int], rng: np.random.Generator, pool: str = "train",
              photo: Callable[[tuple[int, int]], Image.Image] | None = None) -> Image.Image:
    """A room of ``size`` = ``(w, h)`` in the ``pool``'s style; ``photo(size)`` (if given)
    supplies the view through the window and the pictures on the wall; RGB."""
    style = STYLES[check_pool(pool)]
    w, h = size
    horizon = int(h * rng.uniform(0.55, 0.8))
    wall = _jitter(style.walls[int(rng.integers(len(style.walls)))], rng)
    floor = _jitter(style.floors[int(rng.integers(len(style.floors)))], rng)
    img = Image.new("RGB", size, wall)
    d = ImageDraw.Draw(img)
    _wall_texture(d, str(rng.choice(style.wall_textures)), w, horizon, wall, rng)
    d.rectangle([0, horizon, w, h], fill=floor)
    _floor_texture(d, str(rng.choice(style.floor_textures)), w, horizon, h, floor, rng)
    if photo is not None or rng.random() < 0.6:
        _window(img, w, horizon, rng, photo)
    for _ in range(int(rng.integers(1, 4))):
        _furniture(d, img, str(rng.choice(style.furniture)), w, horizon, rng, photo)
    d.rectangle([0, horizon - 3, w, horizon + 2], fill=_shade(wall, 0.55))  # skirting board
    return _light(img, rng)
