"""How hard is each pair of labels for a trained model, on mixtures drawn as training draws them?

    python benchmarks/probe_pair_losses.py --checkpoint RUN/best.pt --index WORKDIR/data/train.csv [--items 480]

Builds ``--items`` training mixtures (random clips, gains, equalisation and augmented views, as
the trainer's loader does, from their own seed) and prints, per pair of labels, the model's
pooled mask loss (the training loss's main term) per unit of bin weight: each mixture's weighted
mean BCE, hardest first.

On the quickstart's data the pairs of two melodic instruments, which separate worst on held-out
scenes, had two to three times the loss of the easiest pair (docs/training.md, "Pairs weighted by
their hardness", where weighting the training towards them did not help them).
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
from avsep.models.checkpoint import load_model  # noqa: E402


def pair_losses(checkpoint: Path, index: Path, items: int, seed: int, batch: int = 16) -> dict[str, list[float]]:
    """Each pair of labels' pooled mask losses per unit of bin weight ('a + b' -> its mixtures')."""
    model, cfg, _ = load_model(checkpoint)
    dataset = MixtureDataset(read_index(index), cfg, train=True, seed=seed)
    losses: dict[str, list[float]] = defaultdict(list)
    with torch.no_grad():
        for first in range(0, items, batch):
            mixtures = default_collate([dataset[(0, i)] for i in range(first, min(first + batch, items))])
            features = mixture_features(mixtures["mix"], cfg, mixtures["sources"])
            logits = model(features.log_mix_mag, mixtures["frames"], mixtures["owner"])
            targets = target_masks(features.source_mags, features.mix_mag, cfg.mask_type)
            weight = loss_weight(features.mix_mag)
            per_unit = mask_loss(logits, targets, cfg, weight, per_item=True) / weight.mean(dim=(1, 2, 3))
            for labels, loss in zip(mixtures["labels"].tolist(), per_unit.tolist()):
                losses[" + ".join(sorted(dataset.labels[i] for i in labels))].append(loss)
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True, help="the training index (WORKDIR/data/train.csv)")
    parser.add_argument("--items", type=int, default=480, help="training mixtures to build")
    parser.add_argument("--seed", type=int, default=99, help="the mixtures' draw (not the run's own seed)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    losses = pair_losses(args.checkpoint, args.index, args.items, args.seed)
    every = [loss for values in losses.values() for loss in values]
    print(f"{args.checkpoint}: weighted mean BCE of {len(every)} training mixtures, mean {np.mean(every):.3f}")
    for pair, values in sorted(losses.items(), key=lambda kv: -np.mean(kv[1])):
        print(f"  {pair:<30} {np.mean(values):.3f}   ({len(values)} mixtures)")


if __name__ == "__main__":
    main()
