"""Mix-and-separate data: clips of solo videos, mixed on the fly.

Each item is a mixture of N solo clips of different labels. Training items take random clip
offsets, random per-source gains and augmented frame crops; evaluation items are fixed by a
seed, centred and at equal loudness, so scores are comparable between runs.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from avsep.config import Config
from avsep.data.decode import load_audio, read_wav, wav_info
from avsep.errors import AvsepError
from avsep.data.index import IndexRow, frame_path

log = logging.getLogger("avsep")
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
TARGET_RMS = 0.1      # every source clip is brought to this loudness before its gain
SILENT_RMS = 1e-4     # a clip quieter than this carries no source to separate


def audio_length(row: IndexRow, sample_rate: int) -> int:
    """Samples in the row's audio at ``sample_rate`` (WAV headers only; other formats decode)."""
    if row.audio.suffix.lower() == ".wav":
        rate, length = wav_info(row.audio)
        if rate != sample_rate:
            raise AvsepError(f"{row.audio}: sample rate {rate} Hz, but the configuration needs {sample_rate} Hz")
        return length
    return len(load_audio(row.audio, sample_rate))


def read_clip(row: IndexRow, start: int, length: int, sample_rate: int) -> np.ndarray:
    """``length`` samples of the row's audio from ``start`` (zero-padded past the end): (length,)."""
    if row.audio.suffix.lower() == ".wav":
        return read_wav(row.audio, start, length)
    audio = load_audio(row.audio, sample_rate)[start:start + length]
    return np.pad(audio, (0, length - len(audio)))


def load_frame(path: Path, size: int, train: bool, rng: np.random.Generator) -> np.ndarray:
    """One normalised frame, (3, size, size) float32.

    Training resizes the shorter side to 1.1 x size, then crops at random and flips half the
    time (as in the paper); evaluation resizes to ``size`` and crops the centre.
    """
    scale = int(size * 1.1) if train else size
    with Image.open(path) as img:
        img.draft("RGB", (scale, scale))  # JPEG DCT scaling: decode at the smallest size that suffices
        img = img.convert("RGB")
        ratio = scale / min(img.size)
        img = img.resize((max(size, round(img.width * ratio)), max(size, round(img.height * ratio))),
                         Image.BILINEAR)
    if train:
        left = int(rng.integers(0, img.width - size + 1))
        top = int(rng.integers(0, img.height - size + 1))
    else:
        left, top = (img.width - size) // 2, (img.height - size) // 2
    img = img.crop((left, top, left + size, top + size))
    if train and rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    array = (np.asarray(img, dtype=np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return array.transpose(2, 0, 1)


@dataclass
class Clip:
    """Where one source clip lies in its video: first audio sample and the frames to show."""
    start: int
    frame_ids: list[int]


class MixtureDataset(Dataset):
    """Mixtures of ``cfg.num_mix`` solo clips with distinct labels.

    Args:
        rows: the solo videos (an index file).
        cfg: sizes and mixing options.
        train: random offsets, gains and crops if True; fixed, centred and unit gain if False.
        mixtures: fixed groups of row numbers (evaluation); by default each item draws a
            random group from its own seed, so items are reproducible and resumable.
        length: number of items when ``mixtures`` is not given.

    Each item is a dict with ``mix`` (n,), ``sources`` (N, n) summing to ``mix``,
    ``frames`` (N, 3, num_frames, img_size, img_size), ``rows`` (N,) and ``labels`` (N,) ids.
    """

    def __init__(self, rows: Sequence[IndexRow], cfg: Config, train: bool = True,
                 mixtures: Sequence[Sequence[int]] | None = None, length: int | None = None, seed: int = 0):
        labels = sorted({row.label for row in rows})
        if len(labels) < cfg.num_mix:
            raise AvsepError(f"the index has {len(labels)} label(s) ({', '.join(labels)}); "
                             f"mixing {cfg.num_mix} sources of different labels needs at least {cfg.num_mix}")
        self.rows, self.cfg, self.train, self.seed = list(rows), cfg, train, seed
        self.labels = labels  # label names, indexed by the ids in each item's ``labels``
        self.label_ids = {label: i for i, label in enumerate(labels)}
        self.row_labels = np.array([self.label_ids[row.label] for row in self.rows])
        self.mixtures = [list(m) for m in mixtures] if mixtures is not None else None
        self.length = len(self.mixtures) if self.mixtures is not None else (length or cfg.epoch_size)
        self.epoch = 0
        self._lengths: dict[int, int] = {}
        self._bad: set[int] = set()  # rows whose files failed to read in this process

    def __len__(self) -> int:
        return self.length

    def _length_of(self, row_id: int) -> int:
        if row_id not in self._lengths:
            self._lengths[row_id] = audio_length(self.rows[row_id], self.cfg.sample_rate)
        return self._lengths[row_id]

    def _pick_rows(self, rng: np.random.Generator) -> list[int]:
        if not self._bad:
            return pick_distinct(self.row_labels, self.cfg.num_mix, rng)
        good = np.flatnonzero(~np.isin(np.arange(len(self.rows)), list(self._bad)))
        if len(np.unique(self.row_labels[good])) < self.cfg.num_mix:
            raise AvsepError(f"too many unreadable videos: fewer than {self.cfg.num_mix} labels are left")
        return good[pick_distinct(self.row_labels[good], self.cfg.num_mix, rng)].tolist()

    def _clip(self, row_id: int, rng: np.random.Generator) -> Clip:
        cfg, row = self.cfg, self.rows[row_id]
        total = self._length_of(row_id)
        room = max(0, total - cfg.audio_len)
        start = int(rng.integers(0, room + 1)) if self.train else room // 2
        centre_frame = round((start + cfg.audio_len / 2) / cfg.sample_rate * cfg.frame_rate)
        offsets = (np.arange(cfg.num_frames) - (cfg.num_frames - 1) / 2) * cfg.frame_gap
        frame_ids = np.clip(np.round(centre_frame + offsets).astype(int), 0, max(0, row.num_frames - 1))
        return Clip(start, frame_ids.tolist())

    def _source(self, row_id: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        cfg, row = self.cfg, self.rows[row_id]
        for _attempt in range(3):  # a random window can fall in a pause: try another one
            clip = self._clip(row_id, rng)
            audio = read_clip(row, clip.start, cfg.audio_len, cfg.sample_rate)
            rms = float(np.sqrt(np.mean(audio ** 2)))
            if rms > SILENT_RMS or not self.train:
                break
        gain = 10 ** (rng.uniform(-cfg.gain_db, cfg.gain_db) / 20) if self.train else 1.0
        audio = audio * (gain * TARGET_RMS / max(rms, SILENT_RMS))
        frames = np.stack([load_frame(frame_path(row, i), cfg.img_size, self.train, rng) for i in clip.frame_ids],
                          axis=1)
        return audio.astype(np.float32), frames

    def _sources(self, row_ids: list[int], rng: np.random.Generator) -> tuple[list[int], tuple, tuple]:
        """Rows, audio and frames of a mixture; a training row that fails to read is logged and replaced."""
        while True:
            try:
                audios, frames = zip(*(self._read_source(r, rng) for r in row_ids))
                return row_ids, audios, frames
            except (AvsepError, OSError, ValueError) as err:
                if self.mixtures is not None:  # fixed evaluation mixtures cannot swap a video
                    raise AvsepError(str(err)) from None
                row_ids = self._pick_rows(rng)

    def _read_source(self, row_id: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        try:
            return self._source(row_id, rng)
        except (AvsepError, OSError, ValueError) as err:
            if row_id not in self._bad:
                self._bad.add(row_id)
                log.warning("skipping %s: %s", self.rows[row_id].audio, err)
            raise

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        row_ids = self.mixtures[index] if self.mixtures is not None else self._pick_rows(rng)
        row_ids, audios, frames = self._sources(row_ids, rng)
        sources = torch.from_numpy(np.stack(audios))
        return {"mix": sources.sum(dim=0), "sources": sources, "frames": torch.from_numpy(np.stack(frames)),
                "rows": torch.tensor(row_ids), "labels": torch.tensor(self.row_labels[row_ids])}


def check_rows(rows: Sequence[IndexRow], index: str | Path) -> list[IndexRow]:
    """The rows whose audio and first and last frames exist; the others are logged and dropped.

    Cheap (a few stat calls per video), so a moved or half-deleted dataset fails loudly at the
    start instead of deep inside a loader worker.
    """
    kept, missing = [], []
    for row in rows:
        needed = (row.audio, frame_path(row, 0), frame_path(row, row.num_frames - 1))
        absent = next((p for p in needed if not p.is_file()), None)
        (missing if absent else kept).append(absent or row)
    if missing:
        log.warning("%s: skipping %d of %d videos with missing files (first: %s)", index, len(missing), len(rows),
                    missing[0])
    if not kept:
        raise AvsepError(f"{index}: none of its {len(rows)} videos has its files (first missing: {missing[0]})")
    return kept


def pick_distinct(row_labels: np.ndarray, num: int, rng: np.random.Generator) -> list[int]:
    """``num`` random row numbers whose labels all differ."""
    labels = rng.choice(np.unique(row_labels), size=num, replace=False)
    return [int(rng.choice(np.flatnonzero(row_labels == label))) for label in labels]


def fixed_mixtures(rows: Sequence[IndexRow], num_mix: int, count: int, seed: int) -> list[list[int]]:
    """A seeded list of ``count`` groups of row numbers, each with distinct labels.

    Groups repeat only when the index has fewer distinct groups than ``count``.
    """
    labels = np.array([row.label for row in rows])
    if len(set(labels.tolist())) < num_mix:
        raise AvsepError(f"the index has {len(set(labels.tolist()))} label(s); "
                         f"mixtures of {num_mix} need at least {num_mix}")
    rng = np.random.default_rng(seed)
    groups: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    for _ in range(count * 20):
        group = pick_distinct(labels, num_mix, rng)
        key = tuple(sorted(group))
        if key not in seen:
            seen.add(key)
            groups.append(group)
        if len(groups) == count:
            return groups
    while len(groups) < count:  # a tiny index: reuse groups rather than return fewer
        groups.append(groups[len(groups) % len(seen)])
    return groups


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)  # loader workers decode; the main process owns the cores for maths


def make_loader(dataset: MixtureDataset, batch_size: int, workers: int, indices: Sequence[int] | None = None,
                drop_last: bool = False, collate_fn=None) -> DataLoader:
    """A DataLoader over ``indices`` of the dataset (all of them by default), in order."""
    order = list(range(len(dataset))) if indices is None else list(indices)
    return DataLoader(dataset, batch_size=batch_size, sampler=order, num_workers=workers,
                      worker_init_fn=_worker_init if workers else None, drop_last=drop_last,
                      persistent_workers=False, pin_memory=False, collate_fn=collate_fn)
