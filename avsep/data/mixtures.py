"""Mix-and-separate data: clips of solo videos, mixed on the fly.

Each item is a mixture of N solo clips of different labels. Training items take random clip
offsets, random per-source gains and augmented views (:mod:`avsep.data.augment`); evaluation
items are fixed by a seed, centred, at equal loudness and seen through centred square views,
so scores are comparable between runs. Both bring the mixture to ``target_rms`` and turn frames
into tensors through :mod:`avsep.dsp.inputs`, the same module inference uses.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from avsep.config import Config
from avsep.data.augment import ramped, random_eq, training_views
from avsep.data.decode import wav_info
from avsep.data.index import IndexRow, frame_path
from avsep.data.videos import SoloVideo, VideoFiles
from avsep.dsp.inputs import centre_square, clip_frame_ids, loudness_gain, normalize_pixels, to_model_scale
from avsep.errors import AvsepError

log = logging.getLogger("avsep")
SILENT_RMS = 1e-4     # a clip quieter than this carries no source to separate
READ_ERRORS = (AvsepError, OSError, ValueError)


@dataclass
class Clip:
    """Where one source clip lies in its video: first audio sample and the frames to show."""
    start: int
    frame_ids: list[int]


class MixtureMaker:
    """Turns N solo videos into one training or evaluation item; shared by every dataset.

    Training items take random clip offsets, random gains and augmented views; evaluation items
    are centred, at equal loudness and seen through centred square views. Either way the
    mixture is brought to ``target_rms`` (:mod:`avsep.dsp.inputs`), as at inference.
    """

    def __init__(self, cfg: Config, train: bool):
        self.cfg, self.train = cfg, train

    def clip(self, video: SoloVideo, rng: np.random.Generator) -> Clip:
        cfg = self.cfg
        room = max(0, video.audio_length() - cfg.audio_len)
        start = int(rng.integers(0, room + 1)) if self.train else room // 2
        centre = (start + cfg.audio_len / 2) / cfg.sample_rate
        return Clip(start, clip_frame_ids(centre, video.num_frames, cfg))

    def frames(self, video: SoloVideo, clip: Clip) -> list[Image.Image]:
        return [video.frame(i, self.cfg.img_size) for i in clip.frame_ids]

    def source(self, video: SoloVideo, rng: np.random.Generator) -> tuple[np.ndarray, list[Image.Image]]:
        """A clip's audio at ``target_rms`` times a random gain (training) or at ``target_rms``,
        and its frames."""
        cfg = self.cfg
        for _attempt in range(3):  # a random window can fall in a pause: try another one
            clip = self.clip(video, rng)
            audio = video.audio(clip.start, cfg.audio_len)
            rms = float(np.sqrt(np.mean(audio ** 2)))
            if rms > SILENT_RMS or not self.train:
                break
        if self.train and cfg.eq_db:
            audio = random_eq(audio, cfg.sample_rate, cfg.eq_db, rng)
            rms = float(np.sqrt(np.mean(audio ** 2)))
        gain = 10 ** (rng.uniform(-cfg.gain_db, cfg.gain_db) / 20) if self.train else 1.0
        return (audio * (gain * cfg.target_rms / max(rms, SILENT_RMS))).astype(np.float32), self.frames(video, clip)

    def views(self, clips: list[list[Image.Image]], distractors: list[SoloVideo], rng: np.random.Generator,
              step: int | None = None):
        """Normalised views (N, 3, T, S, S) and owner maps (N, g, g); training views are augmented
        as at training step ``step`` (full strength if None, see ``aug_ramp``)."""
        cfg = self.cfg
        if self.train:
            readers = [lambda video=video: self.frames(video, self.clip(video, rng)) for video in distractors]
            views, owners = training_views(clips, readers, cfg if step is None else ramped(cfg, step), rng)
        else:
            views = [[centre_square(to_model_scale(f, cfg), cfg.img_size) for f in frames] for frames in clips]
            owners = np.broadcast_to(np.arange(len(clips))[:, None, None], (len(clips), cfg.grid_size, cfg.grid_size))
        pixels = np.stack([np.stack([normalize_pixels(np.asarray(f)) for f in view], axis=1) for view in views])
        return pixels, np.ascontiguousarray(owners, dtype=np.int64)

    def item(self, audios: list[np.ndarray], clips: list[list[Image.Image]], distractors: list[SoloVideo],
             rng: np.random.Generator, step: int | None = None) -> dict[str, torch.Tensor]:
        """``mix``, ``sources``, ``frames`` and ``owner`` of a mixture of the sources read by
        :meth:`source`, for training step ``step`` (None: augmentation at full strength)."""
        sources = np.stack(audios)
        sources *= loudness_gain(sources.sum(axis=0), self.cfg)  # the mixture at target_rms, as at inference
        frames, owner = self.views(clips, distractors, rng, step)
        return {"mix": torch.from_numpy(sources.sum(axis=0)), "sources": torch.from_numpy(sources),
                "frames": torch.from_numpy(frames), "owner": torch.from_numpy(owner)}


class MixtureDataset(Dataset):
    """Mixtures of ``cfg.num_mix`` solo clips with distinct labels, from an index of videos.

    Args:
        rows: the solo videos (an index file).
        cfg: sizes, mixing and augmentation options.
        train: random offsets, gains and augmented views if True; fixed, centred, equal
            loudness and centred square views if False.
        mixtures: fixed groups of row numbers (evaluation); by default each item draws a
            random group from its own seed, so items are reproducible and resumable.
        length: number of items when ``mixtures`` is not given.

    Each item is a dict with ``mix`` (n,) at an RMS of ``target_rms``, ``sources`` (N, n) summing
    to ``mix``, ``frames`` (N, 3, num_frames, img_size, img_size), ``owner`` (N, g, g) (the
    source each grid cell of each view shows, -1 for none), ``rows`` (N,) and ``labels`` (N,) ids.
    """

    def __init__(self, rows: Sequence[IndexRow], cfg: Config, train: bool = True,
                 mixtures: Sequence[Sequence[int]] | None = None, length: int | None = None, seed: int = 0):
        labels = sorted({row.label for row in rows})
        if len(labels) < cfg.num_mix:
            raise AvsepError(f"the index has {len(labels)} label(s) ({', '.join(labels)}); "
                             f"mixing {cfg.num_mix} sources of different labels needs at least {cfg.num_mix}")
        self.rows, self.cfg, self.train, self.seed = list(rows), cfg, train, seed
        self.videos = [VideoFiles(row, cfg.sample_rate) for row in self.rows]
        self.maker = MixtureMaker(cfg, train)
        self.labels = labels  # label names, indexed by the ids in each item's ``labels``
        self.row_labels = np.array([labels.index(row.label) for row in self.rows])
        self.mixtures = [list(m) for m in mixtures] if mixtures is not None else None
        self.length = len(self.mixtures) if self.mixtures is not None else (length or cfg.epoch_size)
        self.epoch = 0
        self._bad: set[int] = set()  # rows whose files failed to read in this process

    def __len__(self) -> int:
        return self.length

    def _good_rows(self) -> np.ndarray:
        return np.flatnonzero(~np.isin(np.arange(len(self.rows)), list(self._bad)))

    def _pick_rows(self, rng: np.random.Generator) -> list[int]:
        good = self._good_rows()
        if len(np.unique(self.row_labels[good])) < self.cfg.num_mix:
            raise AvsepError(f"too many unreadable videos: fewer than {self.cfg.num_mix} labels are left")
        return good[pick_distinct(self.row_labels[good], self.cfg.num_mix, rng)].tolist()

    def _pick_distractors(self, row_ids: list[int], rng: np.random.Generator) -> list[int]:
        """Up to 3 videos of labels not in the mixture, for composed views (none if not composing)."""
        if not (self.train and self.cfg.compose_prob):
            return []
        good = self._good_rows()
        others = good[~np.isin(self.row_labels[good], self.row_labels[row_ids])]
        return [] if not len(others) else rng.choice(others, size=min(3, len(others)), replace=False).tolist()

    def _read(self, row_ids: list[int], rng: np.random.Generator) -> tuple[list, list]:
        audios, clips = [], []
        for row_id in row_ids:
            try:
                audio, frames = self.maker.source(self.videos[row_id], rng)
            except READ_ERRORS as err:
                if row_id not in self._bad:
                    self._bad.add(row_id)
                    log.warning("skipping %s: %s", self.rows[row_id].audio, err)
                raise
            audios.append(audio)
            clips.append(frames)
        return audios, clips

    def _read_mixture(self, row_ids: list[int], rng: np.random.Generator):
        """Audio and frames of a mixture; a training video that fails to read is logged and replaced."""
        while True:
            try:
                return (row_ids, *self._read(row_ids, rng))
            except READ_ERRORS as err:
                if self.mixtures is not None:  # fixed evaluation mixtures cannot swap a video
                    raise AvsepError(str(err)) from None
                row_ids = self._pick_rows(rng)

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """Item ``index`` of epoch ``self.epoch``, or of the epoch given as ``(epoch, index)`` (so
        that one loader, whose worker processes then live through the whole run, can span epochs)."""
        epoch, index = index if isinstance(index, tuple) else (self.epoch, index)
        rng = np.random.default_rng([self.seed, epoch, index])
        row_ids = self.mixtures[index] if self.mixtures is not None else self._pick_rows(rng)
        row_ids, audios, clips = self._read_mixture(row_ids, rng)
        distractors = [self.videos[r] for r in self._pick_distractors(row_ids, rng)]
        # The training step this item is for: the trainer's k-th batch of an epoch is items
        # k*B .. (k+1)*B - 1 (training.data), so the augmentation ramp follows the step on resume too.
        step = epoch * self.cfg.steps_per_epoch + index // self.cfg.batch_size
        item = self.maker.item(audios, clips, distractors, rng, step)
        item.update(rows=torch.tensor(row_ids), labels=torch.tensor(self.row_labels[row_ids]))
        return item


def check_rows(rows: Sequence[IndexRow], index: str | Path, headers: bool = False) -> list[IndexRow]:
    """The rows whose audio and first and last frames exist; the others are logged and dropped.

    Cheap (a few stat calls per video), so a moved or half-deleted dataset fails loudly at the
    start instead of deep inside a loader worker. With ``headers``, WAV files must also have a
    readable header (one small read each): for the fixed mixtures of evaluation and validation,
    which cannot swap a video that fails to read, as training does.
    """
    kept, missing, unreadable = [], [], []
    for row in rows:
        needed = (row.audio, frame_path(row, 0), frame_path(row, row.num_frames - 1))
        absent = next((p for p in needed if not p.is_file()), None)
        if absent:
            missing.append(absent)
        elif headers and (problem := _header_problem(row.audio)):
            unreadable.append(problem)
        else:
            kept.append(row)
    if missing:
        log.warning("%s: skipping %d of %d videos with missing files (first: %s)", index, len(missing), len(rows),
                    missing[0])
    if unreadable:
        log.warning("%s: skipping %d of %d videos whose audio cannot be read (first: %s)", index, len(unreadable),
                    len(rows), unreadable[0])
    if not kept and unreadable and not missing:
        raise AvsepError(f"{index}: none of its {len(rows)} videos has readable audio (first: {unreadable[0]})")
    if not kept:
        raise AvsepError(f"{index}: none of its {len(rows)} videos has its files (first missing: {missing[0]})")
    return kept


def _header_problem(audio: Path) -> str | None:
    """Why the WAV file ``audio`` cannot be read (None if its header reads, or it is no WAV file)."""
    if audio.suffix.lower() != ".wav":
        return None
    try:
        wav_info(audio)
    except AvsepError as err:
        return str(err)
    return None


def pick_distinct(row_labels: np.ndarray, num: int, rng: np.random.Generator) -> list[int]:
    """``num`` random row numbers whose labels all differ."""
    labels = rng.choice(np.unique(row_labels), size=num, replace=False)
    return [int(rng.choice(np.flatnonzero(row_labels == label))) for label in labels]


def fixed_mixtures(rows: Sequence[IndexRow], num_mix: int, count: int, seed: int) -> list[list[int]]:
    """A seeded list of at most ``count`` distinct groups of row numbers, each of distinct labels,
    in which every video takes part about as often as any other.

    Drawing a label first and then one of its videos (as training mixes) would put a label's
    only video of a small split into ``num_mix`` of every L groups of L labels (2 pairs in 5 with
    5 labels), and that one video could decide the median: on one generated draw, 24 such
    validation pairs scored 0.85 dB where 24 others scored 10.3 dB with the same model
    (docs/training.md, "Validation that one video decided"). So each group starts from a
    least-used video and takes, for each further source, a least-used video of a label not yet
    in the group (ties drawn at random). Once a
    group comes out that is already listed, the next one is drawn among all the videos (still of
    distinct labels), so a small index still yields all of its distinct groups.

    A small index holds fewer distinct groups than asked for: then all of them are returned
    (never a group twice), and the caller reports how many there were.
    """
    labels = np.array([row.label for row in rows])
    if len(set(labels.tolist())) < num_mix:
        raise AvsepError(f"the index has {len(set(labels.tolist()))} label(s); "
                         f"mixtures of {num_mix} need at least {num_mix}")
    rng = np.random.default_rng(seed)
    uses = np.zeros(len(rows), dtype=np.int64)
    groups: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    misses = 0
    # Stop after many draws in a row find nothing new: the index has no more distinct groups.
    while len(groups) < count and misses < 200 + 20 * count:
        group = least_used_group(labels, uses, num_mix, rng, any_row=misses > 0)
        key = tuple(sorted(group))
        if key in seen:
            misses += 1
            continue
        seen.add(key)
        groups.append(group)
        uses[group] += 1
        misses = 0
    return groups


def least_used_group(labels: np.ndarray, uses: np.ndarray, num: int, rng: np.random.Generator,
                     any_row: bool = False) -> list[int]:
    """``num`` row numbers of distinct labels, each a least-used row of a label not yet taken
    (any row of such a label with ``any_row``); ties drawn at random."""
    group: list[int] = []
    for _ in range(num):
        allowed = np.flatnonzero(~np.isin(labels, labels[group]))
        if not any_row:
            allowed = allowed[uses[allowed] == uses[allowed].min()]
        group.append(int(rng.choice(allowed)))
    return group


LOADER_NICENESS = 19  # the lowest scheduling priority


def nice_loader(_worker_id: int) -> None:
    """A loader process's ``worker_init_fn`` beside a model on the CPU: the lowest scheduling
    priority, where the platform has one. (torch already gives each loader one thread.)"""
    if not hasattr(os, "nice"):  # POSIX only
        return
    try:
        # On Linux niceness is per thread; a forked loader has one thread when this runs.
        os.nice(LOADER_NICENESS)
    except OSError as err:  # refused by a policy: the loader keeps its priority
        log.debug("a loader process keeps its priority: %s", err)


def worker_init_for(device: torch.device | str | None) -> Optional[Callable[[int], None]]:
    """The loaders' ``worker_init_fn`` for a model on ``device``.

    Beside a model on the CPU, loaders run at the lowest priority: on a machine with few cores
    a loader that takes a core from one of the model's threads stalls the others at their next
    barrier, and at low priority loaders fill the time the model leaves instead (the trainer's
    step on 2 cores: docs/training.md, "Loaders that yield the cores"). Beside a GPU, or where
    the device is not given, they keep their priority: a main process that spins while it waits
    for the GPU must not starve them."""
    return nice_loader if device is not None and torch.device(device).type == "cpu" else None


def make_loader(dataset: Dataset, batch_size: int, workers: int, indices: Sequence[int] | None = None,
                drop_last: bool = False, collate_fn=None, device: torch.device | str | None = None) -> DataLoader:
    """A DataLoader over ``indices`` of the dataset (all of them by default), in order, for a
    model on ``device`` (which sets the loaders' priority: :func:`worker_init_for`)."""
    order = list(range(len(dataset))) if indices is None else list(indices)
    return DataLoader(dataset, batch_size=batch_size, sampler=order, num_workers=workers,
                      worker_init_fn=worker_init_for(device) if workers else None, drop_last=drop_last,
                      persistent_workers=False, pin_memory=False, collate_fn=collate_fn)
