"""What a training run reads: preprocessed folders (an index file) or tar shards (a manifest).

Both give the trainer the same three things: a training manifest (the videos it trains on), a
loader of this rank's batches for any (epoch, first batch), and the fixed validation mixtures.
Both build every item with :class:`avsep.data.mixtures.MixtureMaker`, so the model sees the same
kind of input whichever the storage.

A folder's loader runs from the given batch to the end of the last epoch (its worker processes
live through the run); a shard stream's ends with its epoch, and the trainer asks for the next.
Folder-fed training splits each epoch's global order of items among ranks: rank r of W takes
items ``first + r, first + r + W, ...``, so the k-th batch of every rank together are global
items ``k*B .. (k+1)*B - 1``: the global batch of a single process, whatever W.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from avsep.config import Config, RunSettings
from avsep.data.index import IndexRow, read_index
from avsep.data.mixtures import MixtureDataset, check_rows, fixed_mixtures, worker_init_for
from avsep.data.shard_stream import ShardMixtureSet, ShardStream
from avsep.data.shards import ShardSplit, is_shard_manifest, read_split
from avsep.data.splits import training_manifest
from avsep.training.distributed import DistContext

log = logging.getLogger("avsep")


class RankItems(Sampler):
    """One rank's ``(epoch, index)`` items of :class:`MixtureDataset`, from item ``first`` of
    ``epoch`` to the end of epoch ``epochs - 1``: rank r of W takes items r, r + W, r + 2W... of
    each epoch's ``per_epoch``.

    Made as the loader reads them: a run that a time or step budget ends may configure 100,000
    epochs, and a list of all their items took 9.8 GB and 22 s to build (docs/training.md)."""

    def __init__(self, epoch: int, first: int, epochs: int, per_epoch: int, rank: int = 0, world: int = 1):
        self.epoch, self.first, self.epochs, self.per_epoch = epoch, first, epochs, per_epoch
        self.rank, self.world = rank, world

    def _starts(self) -> Iterable[tuple[int, int]]:
        for epoch in range(self.epoch, self.epochs):
            yield epoch, (self.first if epoch == self.epoch else 0) + self.rank

    def __iter__(self):
        for epoch, start in self._starts():
            for index in range(start, self.per_epoch, self.world):
                yield epoch, index

    def __len__(self) -> int:
        return sum(len(range(start, self.per_epoch, self.world)) for _, start in self._starts())


def data_loader(dataset: Dataset, batch_size: int, workers: int, device: torch.device,
                indices: Optional[Sequence[Any] | Sampler] = None) -> DataLoader:
    """Batches in order (of ``indices`` for a map-style dataset: ints, or (epoch, index) pairs for
    :class:`MixtureDataset`, or a :class:`RankItems`), in pinned memory for CUDA."""
    sampler = indices if isinstance(indices, Sampler) or indices is None else list(indices)
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                      num_workers=workers, worker_init_fn=worker_init_for(device) if workers else None,
                      pin_memory=device.type == "cuda", persistent_workers=False)


class FolderData:
    """Training on a folder from ``avsep preprocess`` (or any index files)."""

    def __init__(self, cfg: Config, train_index: Path, val_index: Optional[Path], ctx: DistContext,
                 settings: RunSettings):
        self.cfg, self.ctx, self.settings = cfg, ctx, settings
        rows = check_rows(read_index(train_index), train_index)
        self.manifest = training_manifest(rows)
        self.train_set = MixtureDataset(rows, cfg, train=True, seed=cfg.seed)
        self.val_set = self._val_set(val_index)

    def _val_set(self, val_index: Optional[Path]) -> Optional[Dataset]:
        cfg = self.cfg
        if val_index is None or cfg.val_pairs <= 0:
            return None
        rows = check_rows(read_index(val_index), val_index, headers=True)
        if not _enough_labels(rows, cfg, val_index):
            return None
        return MixtureDataset(rows, cfg, train=False, mixtures=fixed_mixtures(rows, cfg.num_mix, cfg.val_pairs, cfg.seed))

    def loader(self, epoch: int, first_batch: int) -> Iterable[dict]:
        """This rank's batches from batch ``first_batch`` of ``epoch`` to the end of the last epoch.

        One loader for every epoch left: its worker processes start once and keep building
        batches across epoch ends, where a loader an epoch would stop them (its last prefetched
        batches train while nothing is built) and start new ones (a second's pause every epoch
        of the `small` preset's 62 steps)."""
        cfg, ctx = self.cfg, self.ctx
        items = RankItems(epoch, first_batch * cfg.batch_size, cfg.epochs, cfg.steps_per_epoch * cfg.batch_size,
                          ctx.rank, ctx.world)
        return data_loader(self.train_set, ctx.local_batch(cfg.batch_size), self.settings.workers, ctx.device, items)


class ShardData:
    """Training on tar shards from ``avsep shard`` (see :mod:`avsep.data.shard_stream`)."""

    def __init__(self, cfg: Config, train_manifest: Path, val_manifest: Optional[Path], ctx: DistContext,
                 settings: RunSettings):
        self.cfg, self.ctx, self.settings = cfg, ctx, settings
        split = read_split(train_manifest)
        self.manifest = training_manifest([IndexRow(Path(f"{s.name}.wav"), Path(), s.num_frames, s.label)
                                           for s in split.samples])
        self.stream = ShardStream(split, cfg, cfg.seed, ctx.rank, ctx.world, settings.workers, settings.shuffle_buffer)
        streams, shards = self.stream.streams(), len(split.shards)
        log.info("%s: %d videos in %d shard(s) for %d loader stream(s) (%d process(es) x %d): %s",
                 train_manifest, len(split.samples), shards, streams, ctx.world, self.stream.workers,
                 "each stream reads whole shards" if shards >= streams else
                 "fewer shards than streams, so streams read every shard's samples in turn (write smaller shards "
                 "for sequential reads)")
        self.val_set = self._val_set(val_manifest)

    def _val_set(self, val_manifest: Optional[Path]) -> Optional[Dataset]:
        cfg = self.cfg
        if val_manifest is None or cfg.val_pairs <= 0:
            return None
        split: ShardSplit = read_split(val_manifest)
        if not _enough_labels(split.samples, cfg, val_manifest):
            return None
        return ShardMixtureSet(split, cfg, fixed_mixtures(split.samples, cfg.num_mix, cfg.val_pairs, cfg.seed))

    def loader(self, epoch: int, first_batch: int) -> Iterable[dict]:
        self.stream.epoch, self.stream.first_batch = epoch, first_batch
        return data_loader(self.stream, self.ctx.local_batch(self.cfg.batch_size), self.settings.workers,
                           self.ctx.device)


def _enough_labels(rows: Sequence, cfg: Config, where: Path) -> bool:
    if len({r.label for r in rows}) < cfg.num_mix:
        log.warning("%s has fewer than %d labels: no validation, best.pt follows last.pt", where, cfg.num_mix)
        return False
    return True


def open_data(cfg: Config, train_index: Path, val_index: Optional[Path], ctx: DistContext,
              settings: RunSettings):
    """:class:`ShardData` for a shard manifest (``SHARD_DIR/train.json``), else :class:`FolderData`."""
    kind = ShardData if is_shard_manifest(Path(train_index)) else FolderData
    return kind(cfg, Path(train_index), None if val_index is None else Path(val_index), ctx, settings)
