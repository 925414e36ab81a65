"""Validation split across processes: each scores a part of the fixed mixtures, all summarise all.

Rank r scores mixtures r, r + W, r + 2W... of the validation set (the same fixed mixtures a
single process scores), the per-source scores of every rank are gathered, put back in mixture
order and summarised on every rank, so every rank takes the same best.pt decision without
another message. With one process this gives exactly what
:func:`avsep.evaluation.evaluate.score_loader` gives (less its ``label_groups``: validation
items carry no label names).
"""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from avsep.config import Config
from avsep.evaluation.evaluate import Tally, separate_batch
from avsep.evaluation.scoring import score_mixture, silent_references
from avsep.training.distributed import DistContext

SKIPPED = "a source is silent in its window"  # the reason score_loader gives


def score_part(model: torch.nn.Module, dataset: Dataset, cfg: Config, ctx: DistContext) -> list[tuple[int, Any]]:
    """``(mixture index, scores)`` for this rank's mixtures; scores are None for a mixture
    whose window holds a silent source (it cannot be scored)."""
    positions = list(range(ctx.rank, len(dataset), ctx.world))
    loader = DataLoader(dataset, batch_size=max(1, cfg.batch_size // ctx.world), sampler=positions, num_workers=0)
    records: list[tuple[int, Any]] = []
    for batch in loader:
        out = separate_batch(model, batch, cfg, ctx.device)
        for b in range(batch["mix"].shape[0]):
            index = positions[len(records)]
            sources, mix = batch["sources"][b].numpy(), batch["mix"][b].numpy()
            if silent_references(sources, mix).any():
                records.append((index, None))
                continue
            estimates = {"model": out["est"][b].numpy()}
            if "est_binary" in out:
                estimates["model_binary"] = out["est_binary"][b].numpy()
            records.append((index, score_mixture(sources, estimates, mix)))
    return records


@torch.no_grad()
def validate_split(model: torch.nn.Module, dataset: Dataset, cfg: Config, ctx: DistContext) -> dict[str, Any]:
    """The evaluation summary of ``model`` (in eval mode) on every mixture of ``dataset``."""
    ctx.broadcast_buffers(model)  # score rank 0's model, the one that is saved
    parts = ctx.gather(score_part(model, dataset, cfg, ctx))
    tally = Tally()
    for _index, scores in sorted((record for part in parts for record in part), key=lambda r: r[0]):
        if scores is None:
            tally.skipped[SKIPPED] += 1
        else:
            tally.add(scores)
    return tally.summary()
