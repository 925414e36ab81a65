"""Moving pictures on a canvas, and the arithmetic of their boxes.

A ``Layer`` is an RGBA sprite with a position (and optionally a rotation) per frame; the scene
pastes its layers over a static canvas frame by frame. Boxes are ``[x0, y0, x1, y1]`` with
x1/y1 exclusive.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

Box = tuple[float, float, float, float]


@dataclass
class Layer:
    """``image`` (RGBA) with its unrotated top-left at ``xy[i]`` (``[T, 2]`` canvas pixels) and
    rotated by ``angle[i]`` degrees about its centre (``[T]``, or ``None`` for no rotation)."""

    image: Image.Image
    xy: np.ndarray
    angle: np.ndarray | None = None
    _rotated: dict[float, tuple[Image.Image, tuple[int, int, int, int]]] = field(default_factory=dict, repr=False)

    def _sprite(self, i: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
        # Angles are quantised to 0.5 degree, so a clip needs only a few dozen rotations.
        angle = 0.0 if self.angle is None else round(float(self.angle[i]) * 2) / 2
        if angle not in self._rotated:
            img = self.image.rotate(angle, resample=Image.BILINEAR, expand=True) if angle else self.image
            self._rotated[angle] = (img, img.getchannel("A").getbbox() or (0, 0, 0, 0))
        return self._rotated[angle]

    def at(self, i: int) -> tuple[Image.Image, tuple[int, int]]:
        """The (rotated) sprite and its integer paste position for frame ``i``."""
        img, _ = self._sprite(i)
        dx, dy = (img.width - self.image.width) // 2, (img.height - self.image.height) // 2
        return img, (int(round(self.xy[i, 0])) - dx, int(round(self.xy[i, 1])) - dy)

    def bbox(self, i: int) -> tuple[int, int, int, int]:
        """The drawn (non-transparent) pixels in frame ``i``, canvas pixels, exclusive ends."""
        _, (x, y) = self.at(i)
        b = self._sprite(i)[1]
        return x + b[0], y + b[1], x + b[2], y + b[3]

    def union_bbox(self) -> tuple[int, int, int, int]:
        """``bbox`` over all frames."""
        b = np.array([self.bbox(i) for i in range(len(self.xy))])
        return int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())


def sway(n_frames: int, fps: float, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """A player's slow sway plus a little jitter, ``[n_frames, 2]`` pixels around zero."""
    t = np.arange(n_frames)[:, None] / fps
    amp = amplitude * rng.uniform(0.3, 1.0, 2)
    drift = amp * np.sin(2 * np.pi * rng.uniform(0.1, 0.4, 2) * t + rng.uniform(0, 2 * np.pi, 2))
    return drift + rng.normal(0, 0.4, (n_frames, 2)).clip(-1.0, 1.0)


def rocking(n_frames: int, fps: float, max_angle: float, rng: np.random.Generator) -> np.ndarray:
    """An instrument's slow rocking, ``[n_frames]`` degrees within +-``max_angle``."""
    t = np.arange(n_frames) / fps
    return max_angle * rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 2 * np.pi))


def rotation_margin(size: tuple[int, int], max_angle: float) -> float:
    """How far a rotation by up to ``max_angle`` degrees can push a sprite's corners out."""
    return max(size) * math.sin(math.radians(max_angle)) / 2 + 1


def overlap(a: Box, b: Box) -> float:
    """Area of the intersection of two boxes."""
    return max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))


def to_frame(box: tuple[int, int, int, int], window: np.ndarray, frame: tuple[int, int], margin: int) -> list[int]:
    """A canvas box seen through the camera ``window`` (``[x0, y0, x1, y1]``) in a frame of
    ``frame`` = ``(w, h)``: scaled, grown by ``margin`` pixels (resampling and blur spread
    edges), rounded outwards and clipped to the frame; ``[x0, y0, x1, y1]`` ints."""
    w, h = frame
    sx, sy = w / (window[2] - window[0]), h / (window[3] - window[1])
    x0 = math.floor((box[0] - window[0]) * sx) - margin
    y0 = math.floor((box[1] - window[1]) * sy) - margin
    x1 = math.ceil((box[2] - window[0]) * sx) + margin
    y1 = math.ceil((box[3] - window[1]) * sy) + margin
    return [max(0, x0), max(0, y0), min(w, x1), min(h, y1)]
