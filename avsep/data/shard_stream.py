"""Mixtures from tar shards: a training stream split by rank and loader worker, and fixed mixtures.

**Streams.** With W processes and L loader workers each (L = 1 without workers) there are
S = W x L streams. Stream (r, l) makes the items of the batches k = l, l + L, l + 2L... of rank
r; item j of batch k is global item ``k * batch_size + r + j * W`` of the epoch, the same
numbering as folder-fed training, and its random numbers are seeded by (seed, epoch, that
number). In epoch e the shards are put in an order seeded by (seed, e); with at least S shards,
stream s reads shards s, s + S, s + 2S... of that order, whole and in sequence; with fewer, it
reads a random S-th of the samples (drawn anew each epoch), in shard order (one forward seek each). Either way **no video is
read twice in an epoch, and each is read by one stream only**; all of them are read when the
epoch holds at least ``videos / buffer`` mixtures (``epoch_size >= videos / shuffle_buffer``).

**Mixing.** A stream spreads its reading over its items: by its m-th item (of M) it has read
``t(m) = fill + ceil(m * (n - fill) / (M - 1))`` of its n videos (``fill`` = the buffer size),
and item m pairs videos of distinct labels from the last ``buffer`` videos read (:func:`windows`;
a window with too few labels reads ahead, or, at the very end, looks back). So mixing is random
over a sliding window of the stream, while each process reads only its own part of the data.

**Resume.** The windows are a pure function of the manifest, the seed, the epoch and the item
number, so nothing but ``(epoch, batch_in_epoch)`` is restored: a resumed stream computes its
window at its first item, reads just the videos in that window (one seek), and goes on. With
the same number of processes and workers a resumed run sees exactly the items an uninterrupted
one would; with other numbers, the same epoch and step, but another split of the data.
"""
from __future__ import annotations

import logging
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from avsep.config import Config
from avsep.data.mixtures import READ_ERRORS, MixtureMaker, pick_distinct
from avsep.data.shards import MemoryVideo, SampleReader, SampleRef, ShardSplit
from avsep.errors import AvsepError

log = logging.getLogger("avsep")


def stream_samples(split: ShardSplit, seed: int, epoch: int, stream: int, streams: int) -> list[SampleRef]:
    """The samples stream ``stream`` of ``streams`` reads in ``epoch``, in reading order."""
    shards = split.shard_samples()
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(shards))
    if len(shards) >= streams:
        return [s for i in order[stream::streams] for s in shards[i]]
    samples = [s for i in order for s in shards[i]]
    return [samples[i] for i in sorted(rng.permutation(len(samples))[stream::streams])]


def windows(labels: Sequence[int], items: int, buffer: int, num_mix: int) -> list[tuple[int, int]]:
    """For each of a stream's ``items``, the window ``[lo, hi)`` of its videos it draws from.

    ``hi`` follows the reading schedule (from ``buffer`` videos at the first item to all
    ``len(labels)`` at the last) and ``lo = hi - buffer``; a window with fewer than ``num_mix``
    labels reads ahead, then looks back, until it has them. Videos that no window covers (a
    stream with more than ``buffer`` new videos per item) are never read.
    """
    n = len(labels)
    fill = min(buffer, n)
    out, last = [], 0
    for m in range(items):
        hi = max(last, min(n, fill + -(-m * (n - fill) // max(items - 1, 1))))
        lo = max(0, hi - buffer)
        while len(set(labels[lo:hi])) < num_mix and hi < n:
            hi += 1
        while len(set(labels[lo:hi])) < num_mix and lo > 0:
            lo -= 1
        if len(set(labels[lo:hi])) < num_mix:
            raise AvsepError(f"a loader stream's share of the shards holds fewer than {num_mix} labels; "
                             "use fewer --workers or processes, or write smaller shards (--shard-size)")
        out.append((lo, hi))
        last = hi
    return out


class ShardStream(IterableDataset):
    """Training mixtures of one rank, streamed from the shards of a split (see the module doc).

    Set ``epoch`` and ``first_batch`` (the batch of the epoch to start at) before each loader is
    made. Yields ``batch_size / world`` items per batch, ``steps_per_epoch - first_batch``
    batches in all, each item a dict like :class:`~avsep.data.mixtures.MixtureDataset`'s
    (``rows`` are sample numbers in the split's manifest).
    """

    def __init__(self, split: ShardSplit, cfg: Config, seed: int, rank: int = 0, world: int = 1,
                 workers: int = 0, buffer: int = 64):
        if buffer < cfg.num_mix:
            raise AvsepError(f"--shuffle-buffer {buffer}: must hold at least num_mix = {cfg.num_mix} videos")
        if len(split.labels) < cfg.num_mix:
            raise AvsepError(f"{split.manifest}: {len(split.labels)} label(s); mixing {cfg.num_mix} sources of "
                             f"different labels needs at least {cfg.num_mix}")
        self.split, self.cfg, self.seed, self.rank, self.world = split, cfg, seed, rank, world
        self.workers, self.buffer = max(1, workers), buffer
        self.label_ids = {label: i for i, label in enumerate(split.labels)}
        self.maker = MixtureMaker(cfg, train=True)
        self.reader = SampleReader(cfg.sample_rate)
        self.epoch, self.first_batch = 0, 0

    def streams(self) -> int:
        return self.world * self.workers

    def __iter__(self) -> Iterator[dict]:
        cfg, per_rank = self.cfg, self.cfg.batch_size // self.world
        info = get_worker_info()
        first = self.first_batch + (info.id if info else 0)
        lane = first % self.workers  # every batch this worker makes is one of this residue
        plan = stream_samples(self.split, self.seed, self.epoch, self.rank * self.workers + lane, self.streams())
        labels = [self.label_ids[s.label] for s in plan]
        batches = range(lane, cfg.steps_per_epoch, self.workers)
        spans = windows(labels, len(batches) * per_rank, self.buffer, cfg.num_mix)
        cache: dict[int, MemoryVideo] = {}
        bad: set[int] = set()
        for batch in range(first, cfg.steps_per_epoch, self.workers):
            for j in range(per_rank):
                lo, hi = spans[(batch - lane) // self.workers * per_rank + j]
                for pos in [p for p in cache if not lo <= p < hi]:
                    del cache[pos]
                for pos in range(lo, hi):
                    if pos not in cache and pos not in bad:
                        self._load(plan, pos, cache, bad)
                number = batch * cfg.batch_size + self.rank + j * self.world
                rng = np.random.default_rng([self.seed, self.epoch, number])
                yield self._item(plan, labels, cache, bad, lo, hi, rng, self.epoch * cfg.steps_per_epoch + batch)
        self.reader.close()

    def _load(self, plan: list[SampleRef], pos: int, cache: dict, bad: set) -> None:
        try:
            cache[pos] = self.reader.read(plan[pos])
        except READ_ERRORS as err:
            bad.add(pos)
            log.warning("skipping %s: %s", plan[pos].video_id, err)

    def _item(self, plan, labels, cache, bad, lo, hi, rng, step: int) -> dict:
        """Mix distinct labels from the window, as MixtureDataset mixes rows (same use of ``rng``)."""
        while True:
            good = np.array([p for p in range(lo, hi) if p not in bad])
            window_labels = np.array([labels[p] for p in good])
            if len(good) == 0 or len(np.unique(window_labels)) < self.cfg.num_mix:
                raise AvsepError(f"{self.split.manifest}: too many unreadable videos: fewer than "
                                 f"{self.cfg.num_mix} labels are left in the shuffle buffer")
            picks = good[pick_distinct(window_labels, self.cfg.num_mix, rng)].tolist()
            audios, clips = [], []
            try:
                for pos in picks:
                    audio, frames = self.maker.source(cache[pos], rng)
                    audios.append(audio)
                    clips.append(frames)
                break
            except READ_ERRORS as err:  # a damaged JPEG or WAV: drop the video, draw again
                bad.add(pos)
                log.warning("skipping %s: %s", plan[pos].video_id, err)
        distractors = []
        if self.cfg.compose_prob:  # up to 3 videos of other labels, as MixtureDataset does
            others = good[~np.isin(window_labels, [labels[p] for p in picks])]
            if len(others):
                distractors = rng.choice(others, size=min(3, len(others)), replace=False).tolist()
        item = self.maker.item(audios, clips, [cache[p] for p in distractors], rng, step)
        item.update(rows=torch.tensor([plan[p].index for p in picks]), labels=torch.tensor([labels[p] for p in picks]))
        return item


class ShardMixtureSet(Dataset):
    """Fixed mixtures (validation, evaluation) of a shard split, read by seeking to each sample.

    The same items as :class:`~avsep.data.mixtures.MixtureDataset` with the same ``mixtures``
    over the same videos in the same order: same seeds, same :class:`MixtureMaker`.
    """

    def __init__(self, split: ShardSplit, cfg: Config, mixtures: Sequence[Sequence[int]], seed: int = 0):
        self.split, self.cfg, self.seed = split, cfg, seed
        self.mixtures = [list(m) for m in mixtures]
        self.label_ids = {label: i for i, label in enumerate(split.labels)}
        self.maker = MixtureMaker(cfg, train=False)
        self.reader = SampleReader(cfg.sample_rate)

    def __len__(self) -> int:
        return len(self.mixtures)

    def __getitem__(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, 0, index])
        rows = self.mixtures[index]
        refs = [self.split.samples[i] for i in rows]
        try:
            audios, clips = zip(*(self.maker.source(self.reader.read(ref), rng) for ref in refs))
        except READ_ERRORS as err:  # fixed mixtures cannot swap a video
            raise AvsepError(str(err)) from None
        item = self.maker.item(list(audios), list(clips), [], rng)
        item.update(rows=torch.tensor(rows), labels=torch.tensor([self.label_ids[r.label] for r in refs]))
        return item
