"""Stage 5 of the data path: separate and localize sounds in videos with a trained checkpoint.

The Python API follows demucs::

    from avsep import Separator
    separator = Separator.from_checkpoint("run/best.pt")
    analysis = separator.analyze("duet.mp4")          # the networks run once, here
    violin = analysis.separate(point=(120, 200))       # (n,) at the input's rate and level
    left = analysis.separate(box=(0, 0, 256, 288))
    heat = analysis.energy_map(2.5)                    # (H, W): what sounds where at 2.5 s

Every frame and audio window goes through :mod:`avsep.dsp.inputs`, exactly as in training and
evaluation: frames at the model's scale (whole, any aspect), windows brought to ``target_rms``
and their separations scaled back. See :mod:`avsep.inference.analysis` for what is kept.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from avsep.data.decode import load_audio, probe, read_frames
from avsep.dsp.inputs import clip_frame_ids, loudness_gain, mixture_features, normalize_pixels, to_model_scale
from avsep.errors import AvsepError
from avsep.inference.analysis import Analysis, resample
from avsep.inference.regions import Region, as_region, check_region
from avsep.models.checkpoint import load_model
from avsep.utils import pick_device

log = logging.getLogger("avsep")
MAP_GRIDS = ("fine", "coarse")
BATCH = 8  # windows or frames per forward pass: enough to keep the cores busy, little memory


@dataclass
class VideoClip:
    """Decoded audio and frames, given instead of a path.

    Attributes:
        audio: (n,) mono float waveform; (n, channels) or (channels, n) is averaged to mono.
        sample_rate: of ``audio``, Hz.
        frames: RGB frames (PIL images or (H, W, 3) uint8 arrays) at ``fps``, starting at time 0.
        fps: frames per second.
    """
    audio: np.ndarray
    sample_rate: int
    frames: Sequence
    fps: float


@dataclass
class Separation:
    """The result of :meth:`Separator.separate`: one waveform per region, and the residual."""
    mixture: np.ndarray
    sources: list
    residual: np.ndarray
    regions: list
    sample_rate: int


class Separator:
    """Separate and localize sounds in videos with a trained checkpoint.

    Args:
        checkpoint: a ``.pt`` file from ``avsep train``.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``...
    """

    def __init__(self, checkpoint: str | Path, device: str = "auto"):
        self.device = pick_device(device)
        self.model, self.cfg, _ = load_model(checkpoint, self.device)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto") -> "Separator":
        return cls(path, device)

    # --- analysis ------------------------------------------------------------------------------
    def analyze(self, video: str | Path | VideoClip, start: float | None = None, duration: float | None = None,
                progress: bool = True, grid_fps: float = 2.0, map_grid: str | None = None) -> Analysis:
        """Run the networks once over a video (a path or a :class:`VideoClip`) of any length and aspect.

        Args:
            start, duration: the part of the video to analyse, in seconds (default: all of it).
            progress: show a progress bar.
            grid_fps: also keep the visual grids of this many frames per second, beside those the
                audio windows use, for heatmaps and boxes that move.
            map_grid: the grid of the energy maps. ``fine``: half the network's stride, from eight
                more vision passes, on the frame and its mirror image rolled by a quarter cell
                (:meth:`SoundOfPixels.map_grid`); it pointed at sounding players more
                often on held-out duets (docs/separating.md). ``coarse``: the network's own grid,
                a ninth of the vision work. Default: ``fine`` for models with circular padding
                (the ``small`` preset), where the rolls are exact; ``coarse`` for zero-padded
                ones (``sop``), where a roll moves the frame's border into the picture and the
                larger vision network dominates the analysis time. Queries always use the
                network's own grid.
        """
        map_grid = map_grid or ("fine" if self.cfg.visual_padding == "circular" else "coarse")
        if map_grid not in MAP_GRIDS:
            raise AvsepError(f"map_grid={map_grid!r}: choose one of {', '.join(MAP_GRIDS)}")
        audio, rate, frames, fps, source, size = self._open(video, start or 0.0, duration)
        mixture = resample(audio, rate, self.cfg.sample_rate)
        padded_seconds = self._pad_note(len(mixture), source)
        starts = window_starts(len(mixture), self.cfg.audio_len)
        centres = (starts + self.cfg.audio_len / 2) / self.cfg.sample_rate
        span = max(len(mixture), self.cfg.audio_len) / self.cfg.sample_rate
        available = max(1, math.ceil(span * self.cfg.frame_rate))
        window_ids = [clip_frame_ids(c, available, self.cfg) for c in centres]
        step = max(1, round(self.cfg.frame_rate / grid_fps)) if grid_fps > 0 else available
        wanted = sorted(set(i for ids in window_ids for i in ids) | set(range(0, available, step)))
        with tqdm(total=len(starts) + len(wanted), desc="analyze", unit="step", disable=not progress,
                  dynamic_ncols=True) as bar:   # closed on an error too: no bar redrawn after it
            sound, spec, gains = self._audio_features(mixture, starts, bar)
            kept, (grids, map_grids), first_size = self._visual_grids(frames, fps, wanted, bar, map_grid == "fine")
        size = size or first_size
        position = {frame: k for k, frame in enumerate(kept)}
        window_frames = [np.array(sorted({position[nearest(i, kept)] for i in ids})) for ids in window_ids]
        return Analysis(self.model, self.cfg, starts, gains, sound, spec, np.array(kept) / self.cfg.frame_rate,
                        grids, window_frames, mixture, audio.astype(np.float32), rate, size,
                        source=video if isinstance(video, VideoClip) else source, start=start or 0.0,
                        padded_seconds=padded_seconds, map_grids=map_grids, pool=self.cfg.pool)

    def _open(self, video, start: float, duration: float | None):
        """Audio at its own rate, a frame iterator, its fps, a name and the frame size (W, H) if
        known, cut to [start, start + duration]."""
        if not (start >= 0 and math.isfinite(start)):
            raise AvsepError(f"start={start:g}: expected seconds of at least 0")
        if duration is not None and not (duration > 0 and math.isfinite(duration)):
            raise AvsepError(f"duration={duration:g}: expected a positive number of seconds")
        if isinstance(video, VideoClip):
            audio = clip_audio(video)
            first, last = int(start * video.sample_rate), None if duration is None else int((start + duration) * video.sample_rate)
            if first >= len(audio):
                raise AvsepError(f"start={start:g} s is past the end of the clip ({len(audio) / video.sample_rate:.2f} s)")
            skip = int(round(start * video.fps))
            return (audio[first:last], int(video.sample_rate),
                    (to_image(f) for f in list(video.frames)[skip:]), float(video.fps), None, None)
        path = Path(video)
        info = probe_video(path, audio=True)
        rate = int(info.get("audio_rate") or self.cfg.sample_rate)
        audio = load_audio(path, rate)
        first = int(start * rate)
        last = None if duration is None else first + int(duration * rate)
        if first >= len(audio):
            raise AvsepError(f"{path}: start={start:g} s is past the end ({len(audio) / rate:.2f} s)")
        frames = read_frames(path, self.cfg.frame_rate, short_side=self.cfg.img_size, start=start)
        return audio[first:last], rate, frames, self.cfg.frame_rate, str(path), (info["width"], info["height"])

    def _pad_note(self, samples: int, source: str | None) -> float:
        missing = self.cfg.audio_len - samples
        if missing <= 0:
            return 0.0
        seconds = missing / self.cfg.sample_rate
        log.warning("%s is %.2f s long, shorter than one %.2f s window: padded with %.2f s of silence",
                    source or "the video", samples / self.cfg.sample_rate, self.cfg.audio_len / self.cfg.sample_rate,
                    seconds)
        return seconds

    @torch.no_grad()
    def _audio_features(self, mixture: np.ndarray, starts: np.ndarray, bar):
        cfg = self.cfg
        padded = np.zeros(int(starts[-1]) + cfg.audio_len, dtype=np.float32)
        padded[:len(mixture)] = mixture
        sounds, specs, gains = [], [], []
        for chunk in np.array_split(starts, max(1, math.ceil(len(starts) / BATCH))):
            windows = np.stack([padded[s:s + cfg.audio_len] for s in chunk])
            chunk_gains = np.array([loudness_gain(w, cfg) for w in windows])
            clips = torch.from_numpy((windows * chunk_gains[:, None]).astype(np.float32)).to(self.device)
            features = mixture_features(clips, cfg)
            sounds.append(self.model.sound_features(features.log_mix_mag))
            specs.append(features.mix_spec)
            gains.append(chunk_gains)
            bar.update(len(chunk))
        return torch.cat(sounds), torch.cat(specs), np.concatenate(gains)

    @torch.no_grad()
    def _visual_grids(self, frames: Iterable, fps: float, wanted: list[int], bar, fine: bool):
        """Grids of the wanted frames (indices at the model's frame rate); returns the indices kept,
        the (M, K, h, w) grids with the (M, K, 2h, 2w) fine grids (None unless ``fine``), and the
        original frame size (W, H)."""
        times = {i: i / self.cfg.frame_rate for i in wanted}
        kept, batch, grids, size = [], [], [], None
        targets = iter(sorted(times.items()))
        target = next(targets, None)
        for k, image in enumerate(frames):
            size = size or image.size
            while target is not None and round(target[1] * fps) <= k:
                kept.append(target[0])
                batch.append(normalize_pixels(np.asarray(to_model_scale(image, self.cfg))))
                target = next(targets, None)
                if len(batch) == BATCH:
                    grids.append(self._grid_batch(batch, bar, fine))
                    batch = []
            if target is None:
                break
        if batch:
            grids.append(self._grid_batch(batch, bar, fine))
        if not kept:
            raise AvsepError("the video has no frames in the part asked for")
        bar.update(len(wanted) - len(kept))
        coarse, finer = zip(*grids)
        return kept, (torch.cat(coarse), torch.cat(finer) if fine else None), size

    def _grid_batch(self, batch: list, bar, fine: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        pixels = torch.from_numpy(np.stack(batch)[:, :, None]).to(self.device)   # (B, 3, 1, H, W)
        bar.update(len(batch))
        return self.model.visual_grid(pixels), self.model.map_grid(pixels) if fine else None

    # --- one-call conveniences ------------------------------------------------------------------
    def separate(self, video: str | Path | VideoClip | Analysis, regions: Sequence[Region | Sequence[float]],
                 partition: bool = False, pool: str | None = None) -> Separation:
        """The sound of each region of a video (analysed first, unless given an :class:`Analysis`).

        A region is a Point, Box or BoxTrack, or (x, y) for a point and (x0, y0, x1, y1) for a box."""
        if not regions:
            raise AvsepError("give at least one region (a point or a box) to separate")
        regions = [as_region(region) for region in regions]
        if not isinstance(video, Analysis):
            check_regions(video, regions)
        analysis = video if isinstance(video, Analysis) else self.analyze(video, progress=False)
        sources, residual = analysis.separate_regions(regions, partition, pool=pool)
        return Separation(analysis.input_mixture, sources, residual, regions, analysis.input_rate)


def check_regions(video: str | Path | VideoClip, regions: Sequence[Region]) -> None:
    """Refuse points and boxes outside a video's frame before minutes of analysis, not after."""
    size = frame_size(video)
    for region in regions:
        check_region(region, *size)


def clip_audio(clip: VideoClip) -> np.ndarray:
    """A clip's audio as mono float32 (n,): channels, as (n, C) or (C, n) with C <= 8, averaged."""
    audio = np.asarray(clip.audio, np.float32)
    if audio.ndim == 2 and min(audio.shape) <= 8:
        audio = audio.mean(axis=int(np.argmin(audio.shape)))
    if audio.ndim != 1:
        raise AvsepError(f"VideoClip audio of shape {audio.shape}: expected (n,) samples, or (n, channels)")
    return audio


def frame_size(video: str | Path | VideoClip) -> tuple[int, int]:
    """(width, height) of a video's frames as players show them, without decoding its audio."""
    if isinstance(video, VideoClip):
        if not len(video.frames):
            raise AvsepError("the VideoClip has no frames")
        return to_image(video.frames[0]).size
    info = probe_video(Path(video), audio=False)
    return info["width"], info["height"]


def probe_video(path: Path, audio: bool) -> dict:
    """:func:`~avsep.data.decode.probe` of a file that must exist and hold pictures (and sound,
    with ``audio``); a one-line error naming the file otherwise."""
    if not path.is_file():
        raise AvsepError(f"{path}: video not found")
    info = probe(path)
    if audio and not info["has_audio"]:
        raise AvsepError(f"{path}: no audio stream: there is nothing to separate")
    if not info["has_video"]:
        raise AvsepError(f"{path}: no video stream: avsep needs the pictures to know what to separate")
    return info


def window_starts(samples: int, length: int) -> np.ndarray:
    """First samples of half-overlapping windows of ``length`` that cover ``samples``."""
    hop = length // 2
    count = max(1, math.ceil(max(0, samples - length) / hop) + 1)
    return np.arange(count) * hop


def nearest(index: int, kept: list[int]) -> int:
    """The kept frame index closest to ``index`` (frames past the end map to the last one)."""
    return min(kept, key=lambda k: (abs(k - index), k))


def to_image(frame) -> Image.Image:
    return frame if isinstance(frame, Image.Image) else Image.fromarray(np.asarray(frame, dtype=np.uint8))
