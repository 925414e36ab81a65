"""Small line charts drawn with PIL (no matplotlib): training curves for people to look at."""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

COLOURS = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40))
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 56, 16, 28, 36


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """About ``count`` round numbers spanning [low, high]."""
    span = max(high - low, 1e-9)
    step = 10 ** np.floor(np.log10(span / count))
    for factor in (1, 2, 5, 10):
        if span / (step * factor) <= count:
            step *= factor
            break
    return [float(t) for t in np.arange(np.ceil(low / step) * step, high + step * 1e-6, step)]


def line_chart(series: dict[str, tuple[Sequence[float], Sequence[float]]], title: str, x_label: str,
               size: tuple[int, int] = (480, 300)) -> Image.Image:
    """One panel with a line per series (name -> (xs, ys)); nan values are left out."""
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    width, height = size
    box = (MARGIN_LEFT, MARGIN_TOP, width - MARGIN_RIGHT, height - MARGIN_BOTTOM)
    points = {name: [(float(x), float(y)) for x, y in zip(xs, ys) if np.isfinite(y)]
              for name, (xs, ys) in series.items()}
    every = [p for pts in points.values() for p in pts]
    draw.text((MARGIN_LEFT, 8), title, fill="black", font=font)
    draw.rectangle(box, outline=(160, 160, 160))
    if not every:
        draw.text((box[0] + 10, box[1] + 10), "no data yet", fill="gray", font=font)
        return image
    x_low, x_high = min(p[0] for p in every), max(p[0] for p in every)
    y_low, y_high = min(p[1] for p in every), max(p[1] for p in every)
    x_high, y_high = max(x_high, x_low + 1e-9), max(y_high, y_low + 1e-9)

    def to_pixel(x: float, y: float) -> tuple[float, float]:
        return (box[0] + (x - x_low) / (x_high - x_low) * (box[2] - box[0]),
                box[3] - (y - y_low) / (y_high - y_low) * (box[3] - box[1]))

    for tick in _ticks(y_low, y_high):
        _, py = to_pixel(x_low, tick)
        draw.line((box[0], py, box[2], py), fill=(230, 230, 230))
        draw.text((4, py - 6), f"{tick:g}", fill="black", font=font)
    for tick in _ticks(x_low, x_high):
        px, _ = to_pixel(tick, y_low)
        draw.text((px - 8, box[3] + 4), f"{tick:g}", fill="black", font=font)
    draw.text((box[2] - 40, height - 14), x_label, fill="black", font=font)
    for k, (name, pts) in enumerate(points.items()):
        colour = COLOURS[k % len(COLOURS)]
        pixels = [to_pixel(x, y) for x, y in pts]
        if len(pixels) > 1:
            draw.line(pixels, fill=colour, width=2)
        for px, py in pixels if len(pixels) < 40 else []:
            draw.ellipse((px - 2, py - 2, px + 2, py + 2), fill=colour)
        draw.text((box[0] + 8, box[1] + 6 + 12 * k), name, fill=colour, font=font)
    return image


def smooth(values: Sequence[float], window: int = 25) -> np.ndarray:
    """Running mean over ``window`` steps (shorter at the start), for noisy losses."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    starts = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (sums[1:] - sums[starts]) / (np.arange(1, len(values) + 1) - starts)


def training_curves(steps: Sequence[int], losses: Sequence[float], val_steps: Sequence[int],
                    val_sdr: Sequence[float]) -> Image.Image:
    """Loss (raw and smoothed) and validation SDR against the step, side by side."""
    left = line_chart({"loss": (steps, losses), "loss, running mean": (steps, smooth(losses))},
                      "training loss", "step")
    right = line_chart({"validation SDR (dB)": (val_steps, val_sdr)}, "median SDR on validation mixtures", "step")
    canvas = Image.new("RGB", (left.width + right.width, left.height), "white")
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width, 0))
    return canvas
