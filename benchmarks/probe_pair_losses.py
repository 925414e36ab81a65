"""How hard is each pair of labels for a trained model, on mixtures drawn as training draws them?

    python benchmarks/probe_pair_losses.py --checkpoint RUN/best.pt --index WORKDIR/data/train.csv [--items 480]

Builds ``--items`` training mixtures (random clips, gains, equalisation and augmented views, as
the trainer's loader does, from their own seed) and prints, per pair of labels, the model's
pooled mask loss (the training loss's main term: each source's mask from its pooled visual
vector) per unit of bin weight, that is each mixture's weighted mean loss, hardest first. The
model runs in eval mode (BatchNorm's running statistics), so the figures differ a little from
the losses training printed. Needs a model trained with ``weighted_loss`` (every preset's).

On the quickstart's data the three hardest pairs in two models (flute + violin, saxophone +
violin, guitar + saxophone) had 2.3 to 2.9 times the loss of drum + flute, and were among the
pairs that separate worst on held-out scenes (docs/training.md, "Pairs weighted by their
hardness", where weighting training towards the hard pairs showed no gain).
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.data.index import read_index  # noqa: E402
from avsep.data.mixtures import MixtureDataset  # noqa: E402
from avsep.dsp.inputs import mixture_features  # noqa: E402
from avsep.dsp.masks import loss_weight, mask_loss, target_masks  # noqa: E402
from avsep.errors import AvsepError  # noqa: E402
from avsep.evaluation.tables import label_group  # noqa: E402
from avsep.models.checkpoint import load_model  # noqa: E402


def pair_losses(checkpoint: Path, index: Path, items: int, seed: int, batch: int = 16) -> tuple[dict[str, list[float]], str]:
    """Each pair of labels' pooled mask losses per unit of bin weight ('a + b' -> its mixtures'),
    and the name of the model's loss (bce, l1, l2)."""
    model, cfg, _ = load_model(checkpoint)
    if not cfg.weighted_loss:
        raise SystemExit(f"{checkpoint}: trained without weighted_loss, so its loss has no bin weights to divide by")
    dataset = MixtureDataset(read_index(index), cfg, train=True, seed=seed)
    losses: dict[str, list[float]] = defaultdict(list)
    with torch.no_grad():
        for first in range(0, items, batch):
            mixtures = default_collate([dataset[(0, i)] for i in range(first, min(first + batch, items))])
            features = mixture_features(mixtures["mix"], cfg, mixtures["sources"])
            # The pooled path as training_loss takes it, whatever the model's `pool` for separating.
            grids = model.view_grids(mixtures["frames"])
            logits = model.pooled_logits(model.sound_features(features.log_mix_mag), grids, mixtures["owner"])
            targets = target_masks(features.source_mags, features.mix_mag, cfg.mask_type)
            weight = loss_weight(features.mix_mag)
            per_unit = mask_loss(logits, targets, cfg, weight, per_item=True) / weight.mean(dim=(1, 2, 3))
            for labels, loss in zip(mixtures["labels"].tolist(), per_unit.tolist()):
                losses[label_group([dataset.labels[i] for i in labels])].append(loss)
    return losses, cfg.loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True, help="the training index (WORKDIR/data/train.csv)")
    parser.add_argument("--items", type=int, default=480, help="training mixtures to build")
    parser.add_argument("--seed", type=int, default=99, help="the mixtures' draw (not the run's own seed)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    losses, model_loss = pair_losses(args.checkpoint, args.index, args.items, args.seed)
    every = [loss for values in losses.values() for loss in values]
    print(f"{args.checkpoint}: weighted mean {model_loss} loss of {len(every)} training mixtures, mean {np.mean(every):.3f}")
    for pair, values in sorted(losses.items(), key=lambda kv: -np.mean(kv[1])):
        print(f"  {pair:<30} {np.mean(values):.3f}   ({len(values)} mixtures)")


if __name__ == "__main__":
    try:
        main()
    except AvsepError as error:  # a missing checkpoint or index: one line, no traceback
        raise SystemExit(f"probe_pair_losses: {error}") from None
