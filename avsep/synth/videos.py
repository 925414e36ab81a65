"""Pictures and mp4 files: instrument sprites on varied backgrounds, encoded with PyAV.

The picture of every label is its Noto Color Emoji (or, without the font, a shape+colour drawn
per label) on a random gradient background, drifting and rocking slightly over time so that
frames differ, with a simple "player" figure behind it. Frames are RGB uint8 ``[H, W, 3]``;
sizes are given as ``(width, height)`` like PIL.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Iterable, Iterator

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from avsep.synth.instruments import Instrument
from avsep.synth.logs import warn_once


EMOJI_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",
)
EMOJI_BITMAP_SIZE = 109  # the CBDT bitmap font has strikes at this size only
DEFAULT_FPS = 24
@lru_cache(maxsize=1)
def emoji_font() -> ImageFont.FreeTypeFont | None:
    """The colour emoji font (``$AVSEP_EMOJI_FONT`` first), or ``None`` when not installed."""
    env = os.environ.get("AVSEP_EMOJI_FONT")
    for path in ([env] if env else []) + list(EMOJI_FONT_CANDIDATES):
        if path and os.path.isfile(path):
            try:
                return ImageFont.truetype(path, EMOJI_BITMAP_SIZE)
            except OSError:
                continue
    return None


@lru_cache(maxsize=None)
def emoji_sprite(char: str) -> Image.Image | None:
    """The emoji as an RGBA image cropped to its drawn pixels, or ``None`` if the font lacks it
    (a missing glyph draws nothing in a colour-bitmap font, so an empty bitmap means missing)."""
    font = emoji_font()
    if font is None:
        return None
    canvas = Image.new("RGBA", (EMOJI_BITMAP_SIZE * 3 // 2,) * 2, (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((0, 0), char, font=font, embedded_color=True)
    bbox = canvas.getchannel("A").getbbox()
    return canvas.crop(bbox) if bbox else None


def shape_sprite(inst: Instrument, size: int = 128) -> Image.Image:
    """Fallback picture: the label's shape in its colour with a dark outline; RGBA ``size``^2."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    s, c, o = size, inst.color + (255,), (30, 30, 30, 255)
    m = s // 10
    poly = {
        "triangle": [(s / 2, m), (s - m, s - m), (m, s - m)],
        "star": [(s / 2 + (s / 2 - m) * (1 if i % 2 == 0 else 0.45) * math.sin(i * math.pi / 5),
                  s / 2 - (s / 2 - m) * (1 if i % 2 == 0 else 0.45) * math.cos(i * math.pi / 5)) for i in range(10)],
        "hexagon": [(s / 2 + (s / 2 - m) * math.cos(i * math.pi / 3), s / 2 + (s / 2 - m) * math.sin(i * math.pi / 3))
                    for i in range(6)],
        "bell": [(s / 2, m), (s * 0.7, s * 0.3), (s - m, s - m), (m, s - m), (s * 0.3, s * 0.3)],
        "hook": [(m, m), (s * 0.45, m), (s * 0.45, s * 0.6), (s - m, s * 0.6), (s - m, s - m), (m, s - m)],
    }
    if inst.shape in poly:
        d.polygon(poly[inst.shape], fill=c, outline=o, width=4)
    elif inst.shape == "ring":
        d.ellipse([m, m, s - m, s - m], fill=c, outline=o, width=4)
        d.ellipse([s * 0.3, s * 0.3, s * 0.7, s * 0.7], fill=(245, 240, 225, 255), outline=o, width=4)
    elif inst.shape == "bar":
        d.rounded_rectangle([s * 0.4, m, s * 0.6, s - m], radius=s // 12, fill=c, outline=o, width=4)
    elif inst.shape == "keys":
        d.rectangle([m, s * 0.25, s - m, s * 0.75], fill=(250, 250, 250, 255), outline=o, width=4)
        for i in range(1, 6):
            d.rectangle([m + i * (s - 2 * m) / 6 - 4, s * 0.25, m + i * (s - 2 * m) / 6 + 4, s * 0.55], fill=o)
    elif inst.shape == "bellows":
        d.rectangle([m, s * 0.2, s - m, s * 0.8], fill=c, outline=o, width=4)
        for i in range(1, 6):
            d.line([m + i * (s - 2 * m) / 6, s * 0.2, m + i * (s - 2 * m) / 6, s * 0.8], fill=o, width=3)
    elif inst.shape == "drum":
        d.rectangle([m, s * 0.35, s - m, s * 0.8], fill=c, outline=o, width=4)
        d.ellipse([m, s * 0.2, s - m, s * 0.5], fill=(240, 240, 240, 255), outline=o, width=4)
    else:  # "ellipse" and anything unknown
        d.ellipse([s * 0.2, m, s * 0.8, s - m], fill=c, outline=o, width=4)
    return img


@lru_cache(maxsize=None)
def instrument_sprite(inst: Instrument) -> Image.Image:
    """The label's picture: its emoji when the font renders it, else ``shape_sprite``; RGBA."""
    sprite = emoji_sprite(inst.emoji)
    if sprite is None:
        warn_once(inst.label, f"emoji for {inst.label!r} not available: drawing a shape instead")
        sprite = shape_sprite(inst)
    return sprite


def make_background(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random two-colour gradient at a random angle with soft blotches and grain; ``[H, W, 3]`` uint8."""
    w, h = size
    c0, c1 = rng.uniform(60, 235, 3), rng.uniform(60, 235, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    img = c0 + (c1 - c0) * ramp[..., None]
    # Low-frequency blotches: upsampled coarse noise, so walls/floors look less flat.
    coarse = Image.fromarray((rng.uniform(0, 255, (4, 4))).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    img += (np.asarray(coarse, np.float32)[..., None] - 128) * rng.uniform(0.05, 0.2)
    img += rng.normal(0, rng.uniform(2, 8), (h, w, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def draw_player(bg: Image.Image, center: tuple[float, float], scale: float, rng: np.random.Generator) -> None:
    """Draw a simple person (head + torso) behind where the instrument will be, in place."""
    cx, cy = center
    shirt = tuple(int(v) for v in rng.uniform(20, 200, 3))
    skin = tuple(int(v) for v in rng.choice([(241, 194, 125), (224, 172, 105), (141, 85, 36), (198, 134, 66)]))
    d = ImageDraw.Draw(bg)
    d.rounded_rectangle([cx - 0.45 * scale, cy - 0.25 * scale, cx + 0.45 * scale, cy + 0.9 * scale],
                        radius=int(0.2 * scale), fill=shirt)
    d.ellipse([cx - 0.2 * scale, cy - 0.7 * scale, cx + 0.2 * scale, cy - 0.28 * scale], fill=skin)


@dataclass
class Actor:
    """One instrument in a scene: sprite, its top-left position per frame and rotation per frame."""

    label: str
    sprite: Image.Image
    xy: np.ndarray  # [frames, 2] top-left position in pixels
    angle: np.ndarray  # [frames] rotation in degrees
    _rotations: dict[float, Image.Image] = field(default_factory=dict, repr=False)

    def image(self, i: int) -> tuple[Image.Image, tuple[int, int]]:
        """The (rotated) sprite and its paste position for frame ``i``."""
        # Angles are quantised to 0.5 degree, so a clip needs only a few dozen rotations.
        angle = round(float(self.angle[i]) * 2) / 2
        if angle not in self._rotations:
            self._rotations[angle] = (self.sprite.rotate(angle, resample=Image.BILINEAR, expand=True)
                                      if angle else self.sprite)
        sprite = self._rotations[angle]
        dx = (sprite.width - self.sprite.width) // 2
        dy = (sprite.height - self.sprite.height) // 2
        return sprite, (int(round(self.xy[i, 0])) - dx, int(round(self.xy[i, 1])) - dy)

    def box(self) -> list[int]:
        """``[x0, y0, x1, y1]`` (x1, y1 exclusive): union of the drawn pixels over all frames."""
        boxes = []
        for i in range(len(self.xy)):
            sprite, (x, y) = self.image(i)
            b = sprite.getchannel("A").getbbox()
            boxes.append((x + b[0], y + b[1], x + b[2], y + b[3]))
        b = np.array(boxes)
        return [int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())]


def make_actor(inst: Instrument, region: tuple[int, int, int, int], frames: int, fps: float,
               rng: np.random.Generator, bg: Image.Image | None = None) -> Actor:
    """Place ``inst`` at a random spot of ``region`` = ``(x0, y0, x1, y1)`` with a slow random
    drift, a little per-frame jitter and rocking, never leaving the region; optionally draws a
    player behind it on ``bg``."""
    x0, y0, x1, y1 = region
    rw, rh = x1 - x0, y1 - y0
    base = instrument_sprite(inst)
    side = min(rw, rh) * rng.uniform(0.45, 0.6)  # of the sprite's longer side
    scale = side / max(base.size)
    sprite = base.resize((max(1, round(base.width * scale)), max(1, round(base.height * scale))), Image.LANCZOS)
    if rng.random() < 0.5:
        sprite = sprite.transpose(Image.FLIP_LEFT_RIGHT)
    max_angle = 6.0
    # Margin for the drift and for the corners a rotation adds.
    margin = int(0.06 * min(rw, rh)) + int(side * math.sin(math.radians(max_angle))) + 1
    free_x, free_y = max(0, rw - sprite.width - 2 * margin), max(0, rh - sprite.height - 2 * margin)
    cx0 = x0 + margin + rng.uniform(0, free_x)
    cy0 = y0 + margin + rng.uniform(0, free_y)
    t = np.arange(frames) / fps
    amp = 0.05 * min(rw, rh) * rng.uniform(0.4, 1.0, 2)
    freq, phase = rng.uniform(0.1, 0.4, 2), rng.uniform(0, 2 * np.pi, 2)
    drift = amp * np.sin(2 * np.pi * freq * t[:, None] + phase)
    jitter = rng.normal(0, 0.6, (frames, 2)).clip(-1.5, 1.5)
    xy = np.array([cx0, cy0]) + drift + jitter
    angle = max_angle * 0.6 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 2 * np.pi))
    if bg is not None:
        center = (cx0 + sprite.width / 2, cy0 + sprite.height * 0.55)
        draw_player(bg, center, sprite.height * 0.9, rng)
    return Actor(inst.label, sprite, xy, angle)


def render_frames(background: Image.Image, actors: list[Actor], frames: int, fps: float,
                  rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Yield ``frames`` RGB frames ``[H, W, 3]`` uint8: actors over the background, with a
    gentle global brightness flicker like auto-exposure."""
    flicker = 1 + 0.03 * np.sin(2 * np.pi * rng.uniform(0.05, 0.2) * np.arange(frames) / fps
                               + rng.uniform(0, 2 * np.pi))
    for i in range(frames):
        img = background.copy()
        for actor in actors:
            sprite, pos = actor.image(i)
            img.paste(sprite, pos, sprite)  # unlike alpha_composite, clips at the frame edges
        arr = np.asarray(img.convert("RGB"), dtype=np.float32) * flicker[i]
        yield np.clip(arr, 0, 255).astype(np.uint8)


def write_mp4(path: str | os.PathLike, frames: Iterable[np.ndarray], size: tuple[int, int], fps: int,
              audio: np.ndarray | None, rate: int, n_frames: int) -> None:
    """Encode RGB frames ``[H, W, 3]`` (H.264, yuv420p) and mono float audio ``[n]`` (AAC) to mp4.

    ``audio=None`` writes a video-only file. Audio is muxed in per-frame chunks so the two
    streams stay interleaved, as a camera would record them.
    """
    w, h = size
    if w % 2 or h % 2:
        raise ValueError(f"frame size must be even for yuv420p, got {w}x{h}")
    with av.open(str(path), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        # One encoder thread: parallelism comes from generating several videos at once, and
        # the output bytes then do not depend on the machine's core count.
        vs.options = {"preset": "veryfast", "crf": "23", "threads": "1"}
        as_ = None
        if audio is not None:
            as_ = out.add_stream("aac", rate=rate)
            as_.layout = "mono"
            as_.bit_rate = 96000
            audio = np.ascontiguousarray(audio, dtype=np.float32)
        for i, frame in enumerate(frames):
            out.mux(vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            if as_ is not None:
                a, b = i * len(audio) // n_frames, (i + 1) * len(audio) // n_frames
                chunk = av.AudioFrame.from_ndarray(audio[None, a:b], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = rate, a, Fraction(1, rate)
                out.mux(as_.encode(chunk))
        out.mux(vs.encode(None))
        if as_ is not None:
            out.mux(as_.encode(None))
