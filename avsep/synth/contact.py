"""A contact sheet: sample frames of generated scenes from both pools, to look at.

One row per pool: solo scenes of several instruments, then an ensemble with each source's box
and label drawn on it. Only the pictures are made (no audio, no mp4), so it takes seconds.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from avsep.synth.instruments import CATALOG
from avsep.synth.scenes import build_scene
from avsep.synth.seeds import POOLS, derive_seed
from avsep.synth.videos import DEFAULT_FPS

GAP = 6
TITLE = 24
FRAMES = 24  # scenes are built this long; the sheet shows the middle frame


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1 has one bitmap size only
        return ImageFont.load_default()


def _ensemble_frame(labels: list[str], size: tuple[int, int], seed: int, pool: str) -> Image.Image:
    """The middle frame of an ensemble with each source's box and label drawn on it."""
    scene = build_scene(labels, size, FRAMES, DEFAULT_FPS, np.random.default_rng(seed), pool)
    i = FRAMES // 2
    img = Image.fromarray(scene.frame(i))
    draw, font = ImageDraw.Draw(img), _font(12)
    for (label, _), boxes in zip(scene.sources, scene.boxes()):
        x0, y0, x1, y1 = boxes[i]
        draw.rectangle([x0, y0, x1 - 1, y1 - 1], outline=(255, 40, 40), width=2)
        draw.text((x0 + 3, max(0, y0 - 14)), label, fill=(255, 255, 255), font=font, stroke_width=2,
                  stroke_fill=(0, 0, 0))
    return img


def contact_sheet(path: str | os.PathLike, seed: int = 0, per_pool: int = 4, size: tuple[int, int] = (256, 256),
                  ensemble_size: tuple[int, int] = (512, 256), players: int = 3) -> Path:
    """Write a PNG of ``per_pool`` solo frames of ``size`` and one ensemble of ``players``
    (with boxes) per pool, one row per pool; returns ``path``."""
    labels = sorted(CATALOG)
    w, h = size
    width = per_pool * (w + GAP) + ensemble_size[0]
    height = len(POOLS) * (TITLE + max(h, ensemble_size[1]) + GAP)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw, font = ImageDraw.Draw(sheet), _font(16)
    for row, pool in enumerate(POOLS):
        y = row * (TITLE + max(h, ensemble_size[1]) + GAP)
        name = "training pool" if pool == "train" else "held-out pool"
        draw.text((4, y + 3), f"{name} ({pool}): solo scenes, then an ensemble with its boxes", fill=(0, 0, 0),
                  font=font)
        for k in range(per_pool):
            label = labels[(row * per_pool + k) % len(labels)]
            scene = build_scene([label], size, FRAMES, DEFAULT_FPS,
                                np.random.default_rng(derive_seed(seed, pool, "sheet", k)), pool)
            sheet.paste(Image.fromarray(scene.frame(FRAMES // 2)), (k * (w + GAP), y + TITLE))
        rng = np.random.default_rng(derive_seed(seed, pool, "sheet-labels"))
        group = [str(v) for v in rng.choice(labels, players, replace=False)]
        frame = _ensemble_frame(group, ensemble_size, derive_seed(seed, pool, "sheet-ensemble"), pool)
        sheet.paste(frame, (per_pool * (w + GAP), y + TITLE))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
