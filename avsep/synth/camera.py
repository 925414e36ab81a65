"""Light, colour and camera: how a scene becomes frames.

Per video: a colour grade (brightness, contrast, saturation, colour temperature), a slow zoom
and pan of the camera's framing over a larger canvas, sensor noise, sometimes a slight blur,
vignetting, and a gentle per-frame flicker like auto-exposure. Frames are RGB uint8
``[H, W, 3]``; sizes are ``(width, height)``; camera windows are ``[x0, y0, x1, y1]`` in
canvas pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops

# The canvas is this much larger than the frame, so the camera has room to zoom and pan.
CANVAS_MARGIN = 1.2
TRIPOD_PROB = 0.5
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass(frozen=True)
class Grade:
    """A colour grade: every operation is affine per pixel, so grading each layer before
    compositing equals grading the composite (up to clipping), and static layers are graded
    once instead of once per frame."""

    brightness: float  # gain
    contrast: float  # around mid-grey
    saturation: float  # 0 = grey, 1 = unchanged
    temperature: float  # > 0 warmer (more red, less blue), < 0 cooler

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """Grade float ``[..., 3]`` values in 0-255; returns float32 (not clipped)."""
        x = rgb.astype(np.float32) * np.array([1 + self.temperature, 1.0, 1 - self.temperature], np.float32)
        luma = (x @ LUMA)[..., None]
        x = luma + self.saturation * (x - luma)
        return ((x - 128.0) * self.contrast + 128.0) * self.brightness

    def image(self, img: Image.Image) -> Image.Image:
        """``img`` (RGB or RGBA) graded; the alpha channel is kept."""
        arr = np.asarray(img)
        out = np.clip(self.apply(arr[..., :3]), 0, 255).astype(np.uint8)
        if arr.shape[-1] == 4:
            out = np.concatenate([out, arr[..., 3:]], axis=-1)
        return Image.fromarray(out, img.mode)


def random_grade(rng: np.random.Generator) -> Grade:
    return Grade(brightness=float(rng.uniform(0.65, 1.25)), contrast=float(rng.uniform(0.7, 1.3)),
                 saturation=float(rng.uniform(0.45, 1.35)), temperature=float(rng.uniform(-0.12, 0.12)))


def canvas_size(frame: tuple[int, int]) -> tuple[int, int]:
    """The canvas behind a frame of ``frame`` = ``(w, h)``: larger by ``CANVAS_MARGIN``."""
    return round(frame[0] * CANVAS_MARGIN), round(frame[1] * CANVAS_MARGIN)


def camera_path(canvas: tuple[int, int], frame: tuple[int, int], n_frames: int, fps: float,
                rng: np.random.Generator) -> np.ndarray:
    """The camera's window on the canvas per frame, ``[n_frames, 4]`` float ``x0, y0, x1, y1``.

    Some cameras stand on a tripod: a fixed window of the frame's size. The others keep the
    canvas's aspect, cover 80-100% of its width, and move from one framing to another over the
    clip (slow zoom and pan, eased), sometimes with a slight handheld shake. The window never
    leaves the canvas."""
    cw, ch = canvas
    if rng.random() < TRIPOD_PROB:  # a fixed camera, framing one pixel per pixel: a crop, no resampling
        x0, y0 = int(rng.integers(0, cw - frame[0] + 1)), int(rng.integers(0, ch - frame[1] + 1))
        return np.tile(np.array([x0, y0, x0 + frame[0], y0 + frame[1]], dtype=np.float64), (n_frames, 1))
    t = np.linspace(0.0, 1.0, n_frames)[:, None]
    ease = t * t * (3 - 2 * t)
    zoom = rng.uniform(0.8, 1.0, 2)
    scale = zoom[0] + (zoom[1] - zoom[0]) * ease  # window width / canvas width
    ww, wh = cw * scale, ch * scale
    pos = rng.uniform(0, 1, (2, 2))  # where in the free room the window's corner sits, start/end
    fx = pos[0, 0] + (pos[1, 0] - pos[0, 0]) * ease
    fy = pos[0, 1] + (pos[1, 1] - pos[0, 1]) * ease
    x0, y0 = (cw - ww) * fx, (ch - wh) * fy
    if rng.random() < 0.5:  # handheld: a small wobble of a few tenths of a percent
        secs = np.arange(n_frames)[:, None] / fps
        amp = rng.uniform(0.001, 0.004) * cw
        x0 = x0 + amp * np.sin(2 * np.pi * rng.uniform(0.3, 1.2) * secs + rng.uniform(0, 6.3))
        y0 = y0 + amp * np.sin(2 * np.pi * rng.uniform(0.3, 1.2) * secs + rng.uniform(0, 6.3))
    x0, y0 = np.clip(x0, 0, cw - ww), np.clip(y0, 0, ch - wh)
    return np.concatenate([x0, y0, x0 + ww, y0 + wh], axis=1)


def always_visible(path: np.ndarray) -> tuple[float, float, float, float]:
    """The part of the canvas inside the camera's window in every frame."""
    return float(path[:, 0].max()), float(path[:, 1].max()), float(path[:, 2].min()), float(path[:, 3].min())


@dataclass
class Sensor:
    """Per-frame effects after the camera: a slight blur, gain (flicker, vignette) and noise.

    All are PIL operations on uint8 images: faster than the same in float numpy, and this runs
    for every frame of every video."""

    flicker: np.ndarray  # [T] global gain per frame
    vignette: Image.Image | None  # RGB gain map (255 = 1), or None
    noise: list[Image.Image]  # RGB noise frames centred on 128 (empty: no noise)
    noise_pick: np.ndarray  # [T] which noise frame each frame uses
    blur: float  # >1: the frame is rendered this many times smaller and scaled back up

    def view(self, canvas: Image.Image, window: np.ndarray, size: tuple[int, int]) -> Image.Image:
        """The camera's ``window`` of ``canvas`` at ``size``, blurred if this camera blurs."""
        box = tuple(float(v) for v in window)
        if self.blur <= 1 and (box[2] - box[0], box[3] - box[1]) == size and all(v.is_integer() for v in box):
            return canvas.crop(tuple(int(v) for v in box))  # a tripod: no resampling needed
        if self.blur <= 1:
            return canvas.resize(size, Image.BILINEAR, box=box)
        small = (max(2, round(size[0] / self.blur)), max(2, round(size[1] / self.blur)))
        return canvas.resize(small, Image.BILINEAR, box=box).resize(size, Image.BILINEAR)

    def develop(self, frame: Image.Image, i: int) -> np.ndarray:
        """Frame ``i`` (RGB image of the frame's size) -> uint8 ``[H, W, 3]``."""
        frame = frame.point(_gain_table(round(float(self.flicker[i]) * 1000)))
        if self.vignette is not None:
            frame = ImageChops.multiply(frame, self.vignette)
        if self.noise:
            frame = ImageChops.add(frame, self.noise[int(self.noise_pick[i])], 1.0, -128)
        return np.asarray(frame)

    @property
    def spread(self) -> int:
        """How many pixels the blur spreads a drawn edge (for box margins)."""
        return int(np.ceil(2 * self.blur)) if self.blur > 1 else 0


@lru_cache(maxsize=256)
def _gain_table(permille: int) -> list[int]:
    """``Image.point`` table multiplying all three channels by ``permille`` / 1000 (cached:
    flicker takes few distinct values, and building a table costs more than applying it)."""
    return np.clip(np.arange(256) * (permille / 1000), 0, 255).astype(np.uint8).tolist() * 3


def random_sensor(frame: tuple[int, int], n_frames: int, fps: float, rng: np.random.Generator) -> Sensor:
    """Flicker always (gentle), vignetting in half the videos, noise in most, blur in a few."""
    w, h = frame
    secs = np.arange(n_frames) / fps
    flicker = (1 + rng.uniform(0, 0.04) * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * secs + rng.uniform(0, 6.3))
               + rng.normal(0, 0.004, n_frames))
    vignette = None
    if rng.random() < 0.5:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        gain = 255 * (1 - rng.uniform(0.1, 0.35) * r2 / 2)
        vignette = Image.fromarray(np.repeat(gain[..., None], 3, axis=2).astype(np.uint8))
    noise = []
    if rng.random() < 0.8:
        sigma = float(rng.uniform(0.5, 6.0))  # in 8-bit levels
        noise = [Image.fromarray(np.clip(128 + rng.normal(0, sigma, (h, w, 3)), 0, 255).astype(np.uint8))
                 for _ in range(4)]
    blur = float(rng.uniform(1.2, 1.6)) if rng.random() < 0.12 else 0.0
    return Sensor(flicker, vignette, noise, rng.integers(0, 4, n_frames), blur)
