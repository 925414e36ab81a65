"""Training-time augmentation of the views that the vision network sees.

Everything here also applies to real videos, so nothing relies on how the generated scenes
are made:

* random resized crops (keeping at least ``crop_scale`` of the area) and horizontal flips;
* colour jitter (brightness, contrast, saturation, hue), greyscale, Gaussian blur and cutout;
* **composed views** ("Mix and Localize", Hu et al., CVPR 2022): with probability
  ``compose_prob`` a view becomes a 2 x 2 grid of whole frames, its own video in one quadrant
  and, in the others, the other videos of the mixture and videos that are *not* in the mixture
  (silent distractors), or, with probability ``texture_prob`` each, random textures that show
  nothing in particular (:mod:`avsep.data.textures`). Each view carries an ``owner`` map,
  (g, g) ints, giving for every grid cell the source it shows, or -1 for a video that is not in
  the mixture or a texture. The pooled loss pools each source's own cells; the per-pixel loss
  teaches the cells of silent tiles to stay silent.

Sources are equalised at random (``eq_db``): microphones, rooms and instruments colour the
spectrum of real recordings, and a model should not depend on one colouring.

A view is a list of T PIL images (the clip's frames) that share one set of random parameters,
so the frames of a clip stay consistent with each other.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Callable, Sequence

import numpy as np
import scipy.fft
from PIL import Image, ImageFilter

from avsep.config import Config
from avsep.data.textures import random_texture
from avsep.dsp.inputs import IMAGENET_MEAN, scaled_size

View = list  # list[Image.Image]: the T frames of one clip, all the same size
SILENT = -1   # owner of cells that show a video whose sound is not in the mixture


def crop_box(width: int, height: int, cfg: Config, rng: np.random.Generator) -> tuple[int, int, int, int]:
    """A random box keeping a fraction in [crop_scale, 1] of a square of side ``min(width, height)``,
    with an aspect ratio in [3/4, 4/3]."""
    side = min(width, height)
    area = side * side * rng.uniform(cfg.crop_scale, 1.0)
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    w = min(width, max(8, round(math.sqrt(area * aspect))))
    h = min(height, max(8, round(math.sqrt(area / aspect))))
    left, top = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
    return left, top, left + w, top + h


def random_view(frames: Sequence[Image.Image], cfg: Config, rng: np.random.Generator) -> View:
    """The clip's frames at the model's scale, randomly cropped, resized to ``img_size`` squares,
    flipped half the time, colour-jittered and, with probability ``grey_prob``, made grey (the
    same parameters for every frame)."""
    width, height = scaled_size(frames[0].width, frames[0].height, cfg)
    box = crop_box(width, height, cfg, rng)
    # One resize from the source frame: the crop box mapped back to its pixels.
    sx, sy = frames[0].width / width, frames[0].height / height
    source_box = (box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy)
    flip = rng.random() < 0.5
    factors = rng.uniform(-cfg.color_jitter, cfg.color_jitter, 4) if cfg.color_jitter else None
    # Drawn only when asked, so that runs without it keep their random stream.
    grey = bool(cfg.grey_prob) and rng.random() < cfg.grey_prob
    view = []
    for frame in frames:
        out = frame.convert("RGB").resize((cfg.img_size, cfg.img_size), Image.BILINEAR, box=source_box)
        if flip:
            out = out.transpose(Image.FLIP_LEFT_RIGHT)
        out = jitter(out, factors) if factors is not None else out
        view.append(out.convert("L").convert("RGB") if grey else out)
    return view


LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def hue_rotation(turns: float) -> np.ndarray:
    """The 3 x 3 matrix that rotates RGB colours about the grey axis by ``turns`` of a circle."""
    axis = np.ones(3, dtype=np.float32) / np.sqrt(3.0)
    cos, sin = np.cos(2 * np.pi * turns), np.sin(2 * np.pi * turns)
    cross = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]], dtype=np.float32)
    return (cos * np.eye(3) + sin * cross + (1 - cos) * np.outer(axis, axis)).astype(np.float32)


def jitter(image: Image.Image, factors: np.ndarray) -> Image.Image:
    """Brightness, contrast and saturation scaled by ``1 + factors[:3]``; hue rotated by
    ``factors[3] / 4`` of a turn.

    Every one of these is affine in the colour, so together they are one 3 x 3 matrix and one
    offset, applied in a single pass (about 20 times faster than PIL's enhancers, which take a
    pass each). Contrast pulls towards the mean level of the brightened picture; saturation
    towards each pixel's grey (``LUMA``); the hue turns about the grey axis. Saturation and hue
    keep grey as it is (the rows of both matrices sum to one), so the offset is grey too.
    """
    brightness, contrast = 1.0 + factors[:2]
    rgb = np.asarray(image, dtype=np.float32)
    mean = brightness * float(rgb.mean())
    colour = (1.0 + factors[2]) * np.eye(3, dtype=np.float32) - factors[2] * np.outer(np.ones(3), LUMA)
    if factors[3]:
        colour = hue_rotation(factors[3] / 4) @ colour
    matrix = (brightness * contrast * colour).astype(np.float32)
    out = rgb @ matrix.T + np.float32((1.0 - contrast) * mean)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def blur_and_cutout(view: View, cfg: Config, rng: np.random.Generator) -> View:
    """Maybe a Gaussian blur, maybe a grey rectangle over 10-35% of the side, for every frame."""
    if rng.random() < cfg.blur_prob:
        radius = float(rng.uniform(0.5, 1.5))
        view = [frame.filter(ImageFilter.GaussianBlur(radius)) for frame in view]
    if rng.random() < cfg.cutout_prob:
        side = cfg.img_size
        w, h = (int(side * f) for f in rng.uniform(0.1, 0.35, 2))
        x, y = int(rng.integers(0, side - w + 1)), int(rng.integers(0, side - h + 1))
        grey = tuple(int(c * 255) for c in IMAGENET_MEAN)
        view = [frame.copy() for frame in view]
        for frame in view:
            frame.paste(grey, (x, y, x + w, y + h))
    return view


def quadrants(cfg: Config) -> list[tuple[int, int, int, int]]:
    """The four cell-aligned quadrants of a view as (row0, col0, row1, col1) in grid cells."""
    g, half = cfg.grid_size, cfg.grid_size // 2
    return [(r0, c0, r1, c1) for r0, r1 in ((0, half), (half, g)) for c0, c1 in ((0, half), (half, g))]


def compose(tiles: Sequence[tuple[View, int]], cfg: Config, rng: np.random.Generator) -> tuple[View, np.ndarray]:
    """A 2 x 2 grid of up to four views, each shrunk into a quadrant in random order.

    Args:
        tiles: (view, owner) pairs; the first is the host. Missing quadrants show the host again.
    Returns:
        The composed view and its owner map, (g, g) int64.
    """
    tiles = list(tiles)[:4]
    tiles += [tiles[0]] * (4 - len(tiles))
    order = rng.permutation(4)
    stride, g = cfg.visual_stride, cfg.grid_size
    owner = np.empty((g, g), dtype=np.int64)
    num_frames = len(tiles[0][0])
    canvases = [Image.new("RGB", (cfg.img_size, cfg.img_size)) for _ in range(num_frames)]
    for (r0, c0, r1, c1), k in zip(quadrants(cfg), order):
        view, who = tiles[k]
        owner[r0:r1, c0:c1] = who
        size = ((c1 - c0) * stride, (r1 - r0) * stride)
        for canvas, frame in zip(canvases, view):
            canvas.paste(frame.resize(size, Image.BILINEAR), (c0 * stride, r0 * stride))
    return canvases, owner


def ramped(cfg: Config, step: int) -> Config:
    """``cfg`` with its view augmentation at ``step / aug_ramp`` of full strength (crops keep
    more of the frame, jitter, greyscale, blur and cutout are weaker); ``cfg`` itself from step ``aug_ramp`` on."""
    if step >= cfg.aug_ramp:
        return cfg
    strength = max(step, 0) / cfg.aug_ramp
    # dataclasses.replace, not Config.replace: a weaker augmentation needs no validation, and
    # this runs for every training item.
    return dataclasses.replace(cfg, crop_scale=1 - (1 - cfg.crop_scale) * strength,
                               color_jitter=cfg.color_jitter * strength, blur_prob=cfg.blur_prob * strength,
                               cutout_prob=cfg.cutout_prob * strength, grey_prob=cfg.grey_prob * strength)


def training_views(clips: Sequence[Sequence[Image.Image]], distractors: Sequence[Callable[[], Sequence[Image.Image]]],
                   cfg: Config, rng: np.random.Generator) -> tuple[list[View], np.ndarray]:
    """The augmented views of the N sources of a training mixture.

    Args:
        clips: per source, its T frames (any size).
        distractors: per distractor video (not in the mixture), a function that reads its T
            frames; called only if some view is composed and the distractor is not replaced
            by a texture (reading frames is much of the cost of an item).
    Returns:
        N views of T ``img_size`` squares, and their owner maps, (N, g, g) int64.
    """
    num = len(clips)
    views = [random_view(frames, cfg, rng) for frames in clips]
    composed = rng.random(num) < cfg.compose_prob
    extra = [silent_view(read, len(views[0]), cfg, rng) for read in distractors] if composed.any() else []
    owners = np.repeat(np.arange(num).reshape(num, 1, 1), cfg.grid_size, axis=1).repeat(cfg.grid_size, axis=2)
    out = []
    for n, view in enumerate(views):
        if composed[n]:
            others = [(views[m], m) for m in range(num) if m != n] + [(v, SILENT) for v in extra]
            picked = [others[i] for i in rng.permutation(len(others))[:3]]
            view, owners[n] = compose([(view, n)] + picked, cfg, rng)
        out.append(blur_and_cutout(view, cfg, rng))
    return out, owners


def silent_view(read: Callable[[], Sequence[Image.Image]], num_frames: int, cfg: Config,
                rng: np.random.Generator) -> View:
    """A silent tile's view: a random texture with probability ``texture_prob`` (the same picture
    for every frame), else the augmented frames of the distractor video that ``read`` reads."""
    # Drawn only when asked, so that runs without textures keep their random stream.
    if cfg.texture_prob and rng.random() < cfg.texture_prob:
        return [random_texture(cfg.img_size, rng)] * num_frames
    return random_view(read(), cfg, rng)


EQ_ANCHORS_HZ = np.geomspace(60.0, 5000.0, 6)


def random_eq(audio: np.ndarray, sample_rate: int, max_db: float, rng: np.random.Generator) -> np.ndarray:
    """``audio`` (n,) through a random smooth equaliser: gains uniform in +-``max_db`` at six
    log-spaced frequencies (60 Hz to 5 kHz), interpolated in log frequency."""
    # At a length with small prime factors: clips are 2**k - 1 samples long, and an FFT of that
    # length (32767 = 7 * 31 * 151) was several times slower than at 32768 (docs/training.md,
    # "Cheaper steps"; 16383 = 3 * 43 * 127 is as awkward a length). One sample of zero
    # padding changes nothing that matters: the filter stays circular, as it was.
    size = scipy.fft.next_fast_len(len(audio), real=True)
    spectrum = scipy.fft.rfft(audio, size)
    freqs = scipy.fft.rfftfreq(size, 1.0 / sample_rate)
    gains_db = rng.uniform(-max_db, max_db, len(EQ_ANCHORS_HZ))
    curve = np.interp(np.log(np.maximum(freqs, 1.0)), np.log(EQ_ANCHORS_HZ), gains_db)
    return scipy.fft.irfft(spectrum * 10 ** (curve / 20), size)[: len(audio)].astype(np.float32)
