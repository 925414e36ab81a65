"""One pass of the networks over a video, kept for instant queries.

:meth:`avsep.inference.Separator.analyze` runs the vision network on the frames that matter and
the U-Net on half-overlapping windows of the audio, once. An :class:`Analysis` keeps what every
later query needs and nothing more: per-frame visual grids (K x h x w each, never the frames
themselves), the U-Net's K feature maps and the mixture STFT of every window, and each window's
loudness gain. A query (a point, a box, a box that moves, a tracked object) then costs one small
matrix product per window and an inverse STFT, with no network run.

Memory grows with the video's length, not its resolution. Per minute of video, at the ``small``
preset: about 42 MB of audio features, 21 MB of mixture STFT and 3 MB of visual grids (four
times that again for the fine grids of the energy maps); at ``sop``, about 170, 21 and 2 MB
(one 8 MiB window of features every 2.97 s). docs/benchmarks.md ("Analysis and queries") has
the measurement: 62-71 MB a minute at ``small`` and 175-217 MB at ``sop``.

Windows are ``audio_len`` long and ``audio_len // 2`` apart; each is separated on its own (at
``target_rms``, then scaled back) and neighbours are cross-faded with triangular weights, so
stems have no seams and, in a partition, stems plus residual add up to the mixture exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from scipy.signal import resample_poly
from torch import Tensor

from avsep.config import MAP_WEIGHTINGS, QUERY_POOLS, Config
from avsep.dsp.masks import loss_weight, masks_to_audio
from avsep.dsp.spectrogram import warped_magnitude
from avsep.errors import AvsepError
from avsep.inference.regions import Box, BoxTrack, Point, Region, as_region, cells, check_region, region_at

POINT_RADIUS = 1
# Windows turned into audio at once when stems are rendered (Analysis._render).
RENDER_WINDOWS = 32
# The weights of MAP_WEIGHTINGS on the bins of the mixture's warped magnitude (F, T): see Analysis.energy_map.
MAP_WEIGHTS = dict(zip(MAP_WEIGHTINGS, (loss_weight, lambda magnitude: magnitude ** 2)))
# Input sound at or below this level (dBFS) is silence: nothing sounds there, so its energy map is
# zero and no object sounds (objects.describe_objects). The networks see every window at
# ``target_rms``, so without this a hiss would be mapped as loudly as music.
SILENCE_DBFS = -60.0


@dataclass
class TrackedObject:
    """A detected object followed over the video: its class and its box at each detection time."""
    track_id: int
    class_name: str
    boxes: BoxTrack
    scores: tuple = ()


@dataclass
class Analysis:
    """What one analysis of a video keeps; see the module docstring.

    Shapes: W windows, M analysed frames, K channels, F warped rows, T spectrogram frames.
    """
    model: torch.nn.Module
    cfg: Config
    starts: np.ndarray            # (W,) first sample of each window, at the model's rate
    gains: np.ndarray             # (W,) loudness gain applied to each window
    sound: Tensor                 # (W, K, F, T) U-Net features
    mix_spec: Tensor              # (W, F_lin, T) complex STFT of each window, at target_rms
    frame_times: np.ndarray       # (M,) seconds of the analysed frames
    grids: Tensor                 # (M, K, h, w) activated visual grids of those frames
    window_frames: list           # W arrays: the analysed frames each window pools (as in training)
    mixture: np.ndarray           # (n,) the audio at the model's rate
    input_mixture: np.ndarray     # the audio at the input's rate
    input_rate: int
    frame_size: tuple             # (W, H) of the original frames
    source: object = None         # the video path or VideoClip, to read frames again when needed
    start: float = 0.0            # where the analysed part begins in the video, seconds
    padded_seconds: float = 0.0   # silence the networks saw after the input (not in `duration`)
    # (M, K, 2h, 2w) grids at half the stride for the energy maps (Separator.analyze's map_grid),
    # or None: the maps then use `grids`. Queries always use `grids`: selecting cells of the fine
    # grid clicked worse on one trained model of three (docs/separating.md).
    map_grids: Tensor | None = None
    tracks: dict = field(default_factory=dict)
    pool: str = "vector"          # default way of pooling the cells of a region (the model's cfg.pool)
    # A point stands for the object under it: its cell and the neighbours within `radius` cells,
    # max-pooled like the pooled training loss pools a video's cells. One cell alone (radius 0) is
    # 16 px of the scaled frame, smaller than most instruments, and its vector alone was not what
    # training pooled: on held-out duets it gave +2.2 dB against +7.0 dB for radius 1
    # (docs/benchmarks.md).
    radius: int = POINT_RADIUS    # default neighbourhood of a point, in cells

    # --- basic facts ---------------------------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        """The model's rate; waveforms returned by queries are at :attr:`input_rate`."""
        return self.cfg.sample_rate

    @property
    def duration(self) -> float:
        """Seconds of the input that was analysed (without :attr:`padded_seconds`)."""
        return len(self.input_mixture) / self.input_rate

    @property
    def grid_shape(self) -> tuple[int, int]:
        return tuple(self.grids.shape[-2:])

    def window_centres(self) -> np.ndarray:
        return (self.starts + self.cfg.audio_len / 2) / self.sample_rate

    # --- queries -------------------------------------------------------------------------------
    def region(self, point=None, box=None, boxes_over_time=None, track=None) -> Region:
        """The one region a query names (exactly one of the four), checked against the frame."""
        given = [(name, value) for name, value in (("point", point), ("box", box), ("boxes_over_time", boxes_over_time),
                                                   ("track", track)) if value is not None]
        if len(given) != 1:
            raise AvsepError("give exactly one of point=, box=, boxes_over_time= or track=")
        name, value = given[0]
        if name == "point":
            region = value if isinstance(value, Point) else Point(*map(float, value))
        elif name == "box":
            region = value if isinstance(value, Box) else Box(*map(float, value))
        elif name == "boxes_over_time":
            region = value if isinstance(value, BoxTrack) else BoxTrack.from_pairs(value)
        else:
            if value not in self.tracks:
                known = ", ".join(str(k) for k in sorted(self.tracks)) or "none (run detect first)"
                raise AvsepError(f"track {value}: no such tracked object; known tracks: {known}")
            region = self.tracks[value].boxes
        check_region(region, *self.frame_size)
        return region

    def separate(self, point=None, box=None, boxes_over_time=None, track=None, *, pool: str | None = None,
                 radius: int | None = None) -> np.ndarray:
        """The sound of one region, a waveform (n,) at the input's rate and level.

        Args:
            point: (x, y) pixels; box: (x0, y0, x1, y1) pixels; boxes_over_time: (time, box) pairs
                or a :class:`BoxTrack`; track: the id of a tracked object (after detection).
            pool: how the cells of a box combine: ``vector`` (max of their visual vectors, as the
                pooled training loss), ``mask`` (max of their masks, as the per-pixel loss) or
                ``mean`` (average of their masks). Default: :attr:`pool`.
            radius: for a point, also use the cells within this many cells of it.
        """
        region = self.region(point, box, boxes_over_time, track)
        return self.separate_regions([region], pool=pool, radius=radius)[0][0]

    def separate_regions(self, regions: Sequence[Region | Sequence[float]], partition: bool = False, *,
                         pool: str | None = None, radius: int | None = None) -> tuple[list[np.ndarray], np.ndarray]:
        """Stems of several regions and the residual (the mixture minus the stems); a region is a
        Point, Box or BoxTrack, or (x, y) for a point and (x0, y0, x1, y1) for a box.

        With ``partition=True`` the masks are scaled where they add up to more than 1, so no part
        of the mixture is counted twice: stems and residual then add up to the mixture exactly.
        """
        if not regions:
            raise AvsepError("separate_regions: give at least one region")
        regions = [as_region(region) for region in regions]
        for region in regions:
            check_region(region, *self.frame_size)
        masks = torch.stack([self._window_masks(r, pool or self.pool, self.radius if radius is None else radius)
                             for r in regions])
        if partition:
            masks = masks / masks.sum(dim=0, keepdim=True).clamp_min(1.0)
        stems = [self._to_input_rate(s) for s in self._render(masks)]
        return stems, self.input_mixture - np.sum(stems, axis=0)

    def residual(self, selection: Sequence[np.ndarray | Region]) -> np.ndarray:
        """The mixture minus the given stems (waveforms, or regions to separate first)."""
        stems = [s if isinstance(s, np.ndarray) else self.separate_regions([s])[0][0] for s in selection]
        return self.input_mixture - (np.sum(stems, axis=0) if stems else 0.0)

    # --- heatmaps ------------------------------------------------------------------------------
    def energy_map(self, time: float, resolution: str = "frame", weighting: str = "loss") -> np.ndarray:
        """The share of the sound around ``time`` (one second) that each place's mask keeps, in [0, 1].

        Each time-frequency bin of the mixture counts with a weight: ``weighting="loss"`` (the
        default) weighs it as the training loss does, log(1 + |X|) at the model's input level
        (``loss_weight``); ``"power"`` by its power |X|^2, so the map is the share of the power.
        (For a model trained with ``weighted_loss=false``, the loss weighed every bin alike, and so
        does ``"loss"``.) The loss's weights are the ones the masks were trained to be right under;
        with power, a few loud low bins probably decide the share (not measured). On the held-out
        duets of docs/benchmarks.md, the loss's weights pointed at a sounding player 6 and 7.5
        points more often with two checkpoints of a weaker run, as often with a stronger one
        (docs/separating.md).

        Where the input is silent in that second (at most ``SILENCE_DBFS``), the map is zero:
        each window is scaled to ``target_rms`` before the networks, so the shares alone would map
        a hiss as brightly as music.

        Returns (H, W) at the frame's resolution (bilinear from the grid), or the grid itself with
        ``resolution="grid"``: (2h, 2w) when the analysis kept fine map grids, else (h, w).
        """
        if weighting not in MAP_WEIGHTS:
            raise AvsepError(f"weighting={weighting!r}: choose one of {', '.join(MAP_WEIGHTINGS)}")
        f, w = self.frame_and_window(time)
        grid = self.grids[f] if self.map_grids is None else self.map_grids[f]
        share = np.zeros(grid.shape[-2:], dtype=np.float32)
        if self.level_near(time) > SILENCE_DBFS:
            share = self._shares(grid, w, time, weighting)
        return share if resolution == "grid" else upsample(share, self.frame_size)

    def _shares(self, grid: Tensor, w: int, time: float, weighting: str) -> np.ndarray:
        """Each cell's share of window ``w``'s weighted bins within half a second of ``time``: (h, w)."""
        with torch.no_grad():
            logits = self.model.synthesizer.per_pixel(grid[None], self.sound[w][None])[0]
            magnitude = warped_magnitude(self.mix_spec[w], self.cfg)                          # (F, T)
            unweighted = weighting == "loss" and not self.cfg.weighted_loss
            weight = torch.ones_like(magnitude) if unweighted else MAP_WEIGHTS[weighting](magnitude)
            weight = weight * self.frames_near(time, w, weight.shape[-1], weight.device).to(weight.dtype)
            share = (self.model.activate(logits) * weight).sum(dim=(-2, -1)) / weight.sum().clamp_min(1e-12)
        return share.cpu().numpy().astype(np.float32)

    def frame_and_window(self, time: float) -> tuple[int, int]:
        """The analysed frame and the audio window nearest to ``time``: what a map at ``time`` is made of.

        ``time`` counts seconds from the start of the analysed part; a time outside it (by more than
        half a second) is an error rather than the nearest end's map."""
        if not -0.5 <= time <= self.duration + self.padded_seconds + 0.5:
            raise AvsepError(f"time {time:g} s: outside the analysed {self.duration:.2f} s "
                             "(times count from the start of the analysis)")
        return (int(np.argmin(np.abs(self.frame_times - time))),
                int(np.argmin(np.abs(self.window_centres() - time))))

    def level_near(self, time: float, seconds: float = 1.0) -> float:
        """RMS level in dBFS of ``seconds`` of the input around ``time``; near either end of the
        input, of the ``seconds`` at that end (a map at the first instant weighs more than its
        first sample)."""
        size = max(1, round(seconds * self.input_rate))
        first = min(max(0, round((time - seconds / 2) * self.input_rate)), max(0, len(self.input_mixture) - size))
        stretch = np.asarray(self.input_mixture[first:first + size], dtype=np.float64)
        return float(10 * np.log10(np.mean(np.square(stretch)) + 1e-12)) if stretch.size else -120.0

    def frames_near(self, time: float, window: int, count: int, device: torch.device | str = "cpu",
                    seconds: float = 1.0) -> Tensor:
        """Which of the ``count`` STFT frames of ``window`` lie within ``seconds / 2`` of ``time``: (count,) bool."""
        centre = (time * self.sample_rate - self.starts[window]) / self.cfg.stft_hop
        half = 0.5 * seconds * self.sample_rate / self.cfg.stft_hop
        return (torch.arange(count, dtype=torch.float32, device=device) - centre).abs() <= half

    def energy_maps(self, times: Sequence[float] | None = None, resolution: str = "frame",
                    weighting: str = "loss") -> tuple[np.ndarray, np.ndarray]:
        """Energy maps at ``times`` (default: every analysed frame): (times (M,), maps (M, H, W))."""
        times = self.frame_times if times is None else np.asarray(times, dtype=float)
        return times, np.stack([self.energy_map(t, resolution, weighting) for t in times])

    # --- loudness ------------------------------------------------------------------------------
    def loudness(self, audio: np.ndarray, hop: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
        """RMS level of a waveform at the input's rate in dBFS, every ``hop`` seconds: (times, dB).

        The last stretch may be shorter (a clip under ``hop`` seconds is one stretch); each
        level is the mean power of its own samples, each time the centre of its stretch."""
        lengths = self.stretch_lengths(len(audio), hop)
        size, count = int(lengths[0]), len(lengths)
        power = np.zeros(count * size)
        power[:len(audio)] = np.square(np.asarray(audio, dtype=np.float64))
        level = 10 * np.log10(power.reshape(count, size).sum(axis=1) / lengths + 1e-12)
        return (np.arange(count) * size + lengths / 2) / self.input_rate, level

    def stretch_lengths(self, samples: int, hop: float = 0.5) -> np.ndarray:
        """Samples in each ``hop``-second stretch of a waveform of ``samples`` (:meth:`loudness`'s):
        all ``hop`` long but the last, which may be shorter (at least one sample)."""
        size = max(1, int(hop * self.input_rate))
        count = max(1, math.ceil(samples / size))
        return np.clip(samples - np.arange(count) * size, 1, size).astype(np.float64)

    # --- internals -----------------------------------------------------------------------------
    def _window_masks(self, region: Region, pool: str, radius: int) -> Tensor:
        """The region's mask in every window: (W, F, T), after the output activation."""
        if pool not in QUERY_POOLS:
            raise AvsepError(f"pool={pool!r}: choose one of {', '.join(QUERY_POOLS)}")
        masks = []
        with torch.no_grad():
            for w, frame_ids in enumerate(self.window_frames):
                per_frame = [self._cell_vectors(region, f, radius) for f in frame_ids]
                vectors = torch.cat(per_frame)                                           # (cells, K)
                sound = self.sound[w][None]
                if pool in ("vector", "average"):
                    pooled = vectors.amax(0, keepdim=True) if pool == "vector" else _time_max_cell_mean(per_frame)
                    masks.append(self.model.activate(self.model.synthesizer(pooled, sound))[0])
                    continue
                logits = self.model.synthesizer.per_cell(vectors[None], sound)[0]           # (cells, F, T)
                masks.append(self.model.activate(logits.amax(0)) if pool == "mask" else
                             self.model.activate(logits).mean(0))
        return torch.stack(masks)

    def _cell_vectors(self, region: Region, frame: int, radius: int) -> Tensor:
        shape = region_at(region, float(self.frame_times[frame]))
        selected = torch.from_numpy(cells(shape, self.grid_shape, self.frame_size, radius))
        return self.grids[frame][:, selected].T

    def _render(self, masks: Tensor) -> np.ndarray:
        """Masks (Q, W, F, T) -> Q waveforms at the model's rate, gains undone, windows cross-faded.

        Windows are turned into audio RENDER_WINDOWS at a time: the masked linear spectrograms of
        a whole long video for several regions at once would take many times the analysis's memory."""
        length, count = self.cfg.audio_len, masks.shape[0]
        total = int(self.starts[-1]) + length
        summed, norm = np.zeros((count, total), np.float32), np.zeros(total, np.float32)
        weight = crossfade(length).astype(np.float32)
        for chunk in torch.arange(len(self.starts)).split(RENDER_WINDOWS):
            with torch.no_grad():
                spec = self.mix_spec[chunk].unsqueeze(0).expand(count, -1, -1, -1)
                waves = masks_to_audio(masks[:, chunk].flatten(0, 1)[:, None], spec.flatten(0, 1), self.cfg, length)
            waves = waves.view(count, len(chunk), length).cpu().numpy() / self.gains[None, chunk.numpy(), None]
            for i, w in enumerate(chunk.tolist()):
                start = int(self.starts[w])
                summed[:, start:start + length] += waves[:, i] * weight
                norm[start:start + length] += weight
        return (summed / norm)[:, :len(self.mixture)].astype(np.float32)

    def _to_input_rate(self, audio: np.ndarray) -> np.ndarray:
        if self.input_rate != self.sample_rate:
            audio = resample(audio, self.sample_rate, self.input_rate)
        out = np.zeros(len(self.input_mixture), dtype=np.float32)
        out[:min(len(out), len(audio))] = audio[:len(out)]
        return out


def crossfade(length: int) -> np.ndarray:
    """Triangular weights of a window (never exactly 0, so the first and last samples are kept)."""
    return 1.0 - np.abs(np.linspace(-1.0, 1.0, length)) + 1e-3


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited polyphase resampling of a waveform (n,) between integer rates."""
    if rate_in == rate_out:
        return np.asarray(audio, dtype=np.float32)
    g = np.gcd(int(rate_in), int(rate_out))
    return resample_poly(np.asarray(audio, dtype=np.float64), rate_out // g, rate_in // g).astype(np.float32)


def _time_max_cell_mean(per_frame: list[Tensor]) -> Tensor:
    """``pool="average"`` as training pools: the max over frames (``temporal_pool="max"``) of each
    selected cell, then the mean over cells; (1, K). Where a moving region selects different
    numbers of cells in different frames, the mean over all of them."""
    if len({len(v) for v in per_frame}) == 1:
        return torch.stack(per_frame).amax(0).mean(0, keepdim=True)
    return torch.cat(per_frame).mean(0, keepdim=True)


def upsample(grid_map: np.ndarray, frame_size: tuple[int, int]) -> np.ndarray:
    """An (h, w) map stretched bilinearly to a (H, W) frame; ``frame_size`` is (W, H)."""
    tensor = torch.from_numpy(np.ascontiguousarray(grid_map, dtype=np.float32))[None, None]
    width, height = frame_size
    return torch.nn.functional.interpolate(tensor, size=(height, width), mode="bilinear",
                                           align_corners=False)[0, 0].numpy()
