"""Stage 5 of the data path: separate the sound of a region of a video, and localize sounds.

The Python API follows demucs::

    from avsep import Separator
    sep = Separator("run/best.pt")
    result = sep.separate("duet.mp4", [Box(0, 0, 256, 256), Point(400, 120)])
    result.sources[0]          # (n,) float32 waveform of the first region

A box's sound is the mixture filtered by the mask of the grid cells inside it: by default the
mask of their max-pooled visual vector (as in training), or the average of their per-pixel
masks (``pool="mean"``). The whole frame is given to the vision network at the scale training used
(shorter side ``img_size``, not cropped), so every pixel of the video has a cell; each clip's audio
is brought to the training loudness and the outputs are scaled back (:mod:`avsep.dsp.inputs`). Videos longer than a clip are separated in half-overlapping
clips that are cross-faded.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
from PIL import Image

from avsep.models.checkpoint import load_model
from avsep.data.decode import load_audio, read_frames, write_wav
from avsep.errors import AvsepError
from avsep.dsp.masks import masks_to_audio
from avsep.dsp.inputs import clip_frame_ids, frames_tensor, loudness_gain, mixture_features
from avsep.utils import pick_device

log = logging.getLogger("avsep")


@dataclass(frozen=True)
class Point:
    """A pixel (x, y) of the video frame."""
    x: float
    y: float


@dataclass(frozen=True)
class Box:
    """A rectangle [x0, x1) x [y0, y1) in pixels of the video frame."""
    x0: float
    y0: float
    x1: float
    y1: float


Region = Union[Point, Box]


@dataclass
class Video:
    """A decoded video: mono audio (n,) at the model's rate and frames at its frame rate."""
    audio: np.ndarray
    frames: list[Image.Image]
    width: int
    height: int


@dataclass
class Separation:
    """The result of :meth:`Separator.separate`.

    Attributes:
        mixture: (n,) the video's audio.
        sources: one (n,) waveform per region, in the order given.
        regions: the regions.
        sample_rate: of all waveforms.
    """
    mixture: np.ndarray
    sources: list[np.ndarray]
    regions: list[Region]
    sample_rate: int


@dataclass
class Localization:
    """Where sound comes from, clip by clip.

    Attributes:
        heatmaps: (clips, h, w) share of the mixture's energy that each cell's mask keeps, in [0, 1].
        times: (clips,) start of each clip in seconds.
        frames: the middle frame of each clip (PIL images), to draw the heatmaps on.
    """
    heatmaps: np.ndarray
    times: np.ndarray
    frames: list[Image.Image] = field(default_factory=list)


class Separator:
    """Separate and localize sounds in videos with a trained checkpoint.

    Args:
        checkpoint: a ``.pt`` file from ``avsep train``.
        device: ``cpu``, ``cuda``..., or ``auto`` for CUDA when available.
    """

    def __init__(self, checkpoint: str | Path, device: str = "cpu"):
        self.device = pick_device(device)
        self.model, self.cfg, _ = load_model(checkpoint, self.device)

    # --- loading ------------------------------------------------------------------------
    def load_video(self, path: str | Path) -> Video:
        """Decode the audio and the frames (at the model's frame rate, full size) of a video."""
        audio = load_audio(path, self.cfg.sample_rate)
        frames = list(read_frames(path, self.cfg.frame_rate, short_side=None))
        if not frames:
            raise AvsepError(f"{path}: no frames")
        return Video(audio, frames, frames[0].width, frames[0].height)

    def _frames_tensor(self, video: Video, centre: float) -> torch.Tensor:
        """The clip's frames around ``centre`` seconds, whole, at the model's scale: (1, 3, T, H, W)."""
        ids = clip_frame_ids(centre, len(video.frames), self.cfg)
        return torch.from_numpy(frames_tensor([video.frames[i] for i in ids], self.cfg, square=False)).unsqueeze(0)

    def _starts(self, video: Video, hop: int | None = None) -> range:
        """First samples of clips every ``hop`` samples (default: back to back) covering the audio."""
        return range(0, max(1, len(video.audio)), hop or self.cfg.audio_len)

    def _clip(self, video: Video, start: int) -> tuple[torch.Tensor, float]:
        """The mixture clip from ``start`` (zero-padded at the end), brought to ``target_rms`` as in
        training, as (1, audio_len), and the gain that did it."""
        clip = video.audio[start:start + self.cfg.audio_len]
        clip = np.pad(clip, (0, self.cfg.audio_len - len(clip))).astype(np.float32)
        gain = loudness_gain(clip, self.cfg)
        return torch.from_numpy(clip * np.float32(gain)).unsqueeze(0).to(self.device), gain

    # --- per-pixel masks ----------------------------------------------------------------
    @torch.no_grad()
    def clip_features(self, video: Video, start: int):
        """Visual grid (K, h, w), audio features (1, K, F, T), mixture features and gain of one clip."""
        clip, gain = self._clip(video, start)
        features = mixture_features(clip, self.cfg)
        centre = (start + self.cfg.audio_len / 2) / self.cfg.sample_rate
        grid = self.model.visual_grid(self._frames_tensor(video, centre).to(self.device))[0]
        return grid, self.model.sound_features(features.log_mix_mag), features, gain

    @torch.no_grad()
    def pixel_masks(self, video: Video, start: int) -> tuple[torch.Tensor, object]:
        """Masks of every grid cell for the clip starting at ``start``: (h, w, F, T), and its features."""
        grid, sound, features, _gain = self.clip_features(video, start)
        return self.model.activate(self.model.synthesizer.per_pixel(grid[None], sound))[0], features

    def cells(self, region: Region, grid: tuple[int, int], video: Video) -> np.ndarray:
        """Boolean (h, w) selection of the grid cells of a region (at least one cell)."""
        h, w = grid
        cell_x = (np.arange(w) + 0.5) * video.width / w
        cell_y = (np.arange(h) + 0.5) * video.height / h
        if isinstance(region, Box):
            inside = np.outer((cell_y >= region.y0) & (cell_y < region.y1), (cell_x >= region.x0) & (cell_x < region.x1))
            if inside.any():
                return inside
            region = Point((region.x0 + region.x1) / 2, (region.y0 + region.y1) / 2)
        if not (0 <= region.x < video.width and 0 <= region.y < video.height):
            raise AvsepError(f"point ({region.x:g}, {region.y:g}) is outside the {video.width}x{video.height} frame")
        selected = np.zeros((h, w), dtype=bool)
        selected[min(h - 1, int(region.y * h / video.height)), min(w - 1, int(region.x * w / video.width))] = True
        return selected

    def region_mask(self, grid: torch.Tensor, sound: torch.Tensor, cells: np.ndarray, pool: str) -> torch.Tensor:
        """The mask (F, T) of the cells selected in ``grid`` (K, h, w).

        ``pool="max"`` max-pools the cells' visual vectors, as training does over the whole frame;
        ``pool="mean"`` averages the cells' masks.
        """
        vectors = grid[:, torch.from_numpy(cells)].T  # (cells, K)
        if pool == "max":
            return self.model.activate(self.model.synthesizer(vectors.amax(dim=0, keepdim=True), sound))[0]
        logits = self.model.synthesizer(vectors, sound.expand(len(vectors), -1, -1, -1))
        return self.model.activate(logits).mean(dim=0)

    # --- public API ---------------------------------------------------------------------
    @torch.no_grad()
    def separate(self, video: str | Path | Video, regions: Sequence[Region], pool: str = "max") -> Separation:
        """The sound of each region of a video, as (n,) waveforms.

        Args:
            video: a path, or a :class:`Video` from :meth:`load_video`.
            regions: points and boxes in pixels of the video frame.
            pool: how the grid cells of a box are combined: ``max`` (default) max-pools their
                visual vectors, like training; ``mean`` averages their masks. See
                docs/architecture.md for how the two compare.
        """
        if not regions:
            raise AvsepError("give at least one region (a point or a box) to separate")
        if pool not in ("max", "mean"):
            raise AvsepError(f"pool={pool!r}: choose max or mean")
        video = video if isinstance(video, Video) else self.load_video(video)
        length, total = self.cfg.audio_len, len(video.audio)
        hop = length // 2
        # Half-overlapping clips cross-faded with triangular weights: each clip's mask changes
        # at its edges, and butting clips together would click every 6 s.
        weight = 1.0 - np.abs(np.linspace(-1.0, 1.0, length)) + 1e-3
        padded = (len(self._starts(video, hop)) - 1) * hop + length
        summed, norm = np.zeros((len(regions), padded)), np.zeros(padded)
        for start in self._starts(video, hop):
            grid, sound, features, gain = self.clip_features(video, start)
            cells = [self.cells(r, tuple(grid.shape[1:]), video) for r in regions]
            masks = torch.stack([self.region_mask(grid, sound, c, pool) for c in cells])
            audio = masks_to_audio(masks.unsqueeze(0), features.mix_spec, self.cfg, length)[0].cpu().numpy() / gain
            summed[:, start:start + length] += audio * weight
            norm[start:start + length] += weight
        sources = list((summed / norm)[:, :total].astype(np.float32))
        return Separation(video.audio, sources, list(regions), self.cfg.sample_rate)

    def localize(self, video: str | Path | Video) -> Localization:
        """Per clip, the share of the mixture's energy that each cell's mask keeps: (clips, h, w)."""
        video = video if isinstance(video, Video) else self.load_video(video)
        heatmaps, times, frames = [], [], []
        for start in self._starts(video):
            masks, features = self.pixel_masks(video, start)
            energy = features.mix_mag[0, 0] ** 2
            heatmaps.append(((masks * energy).sum(dim=(-2, -1)) / energy.sum().clamp_min(1e-12)).cpu().numpy())
            times.append(start / self.cfg.sample_rate)
            centre = (start + self.cfg.audio_len / 2) / self.cfg.sample_rate
            frames.append(video.frames[min(len(video.frames) - 1, int(centre * self.cfg.frame_rate))])
        return Localization(np.stack(heatmaps), np.array(times), frames)


def heatmap_strip(loc: Localization, height: int = 160, max_clips: int = 12) -> Image.Image:
    """The heatmap of each clip over its middle frame, side by side and labelled with its start time.

    Each heatmap is stretched to its own range (every cell keeps some energy), so each clip shows
    where its sound comes from most.
    """
    from PIL import ImageDraw

    from avsep.viz.images import heatmap_overlay

    step = max(1, -(-len(loc.frames) // max_clips))  # ceil: at most max_clips panels
    panels = []
    for frame, heat, start in list(zip(loc.frames, loc.heatmaps, loc.times))[::step]:
        panel = heatmap_overlay(frame, (heat - heat.min()) / max(float(heat.max() - heat.min()), 1e-6))
        panel = panel.resize((max(1, round(panel.width * height / panel.height)), height), Image.BILINEAR)
        ImageDraw.Draw(panel).text((4, 4), f"{start:.1f} s", fill="white")
        panels.append(panel)
    strip = Image.new("RGB", (sum(p.width for p in panels), height), "black")
    x = 0
    for panel in panels:
        strip.paste(panel, (x, 0))
        x += panel.width
    return strip
