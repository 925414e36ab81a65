"""What does the vision network tell instruments apart by? Print each label's pooled visual vector.

    python benchmarks/probe_codes.py --checkpoint RUN/best.pt --data DATA [--index train.csv]

Each video of the index is seen through its centred evaluation view; its visual vector is
pooled over the grid as a solo video's mask is made (the max, with the presets' ``pool``). The script prints, per channel:

    mean, spread     over videos: a channel whose spread is near 0 is the same for every video
                     (with a sigmoid: stuck at 0 or 1, where it passes no gradient: a dead channel)
    label share      the share of the channel's variance that lies between labels: near 1, the
                     channel says which instrument is shown; near 0, which video

and then each label's mean vector over the live channels. Two labels with the same mean vector
get the same mask: the model cannot separate them, however well its audio network works.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.data.index import read_index  # noqa: E402
from avsep.errors import AvsepError  # noqa: E402
from avsep.models.checkpoint import load_model  # noqa: E402
from probe_memorization import centred_frames  # noqa: E402

DEAD_SPREAD = 0.02   # a channel whose standard deviation over videos is below this is dead


def pooled_codes(model, cfg, rows) -> np.ndarray:
    """(V, K): each video's visual vector, pooled over its grid as the model pools a solo video."""
    with torch.no_grad():
        frames = torch.stack([centred_frames(rows, i, cfg) for i in range(len(rows))])
        grids = torch.cat([model.visual_grid(chunk) for chunk in frames.split(16)])
        return model.pooled_vectors(grids.unsqueeze(1))[:, 0].numpy()


def label_share(codes: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(K,): between-label variance over total variance, per channel."""
    total = codes.var(axis=0)
    means = codes.mean(axis=0)
    between = sum((labels == k).sum() * (codes[labels == k].mean(axis=0) - means) ** 2
                  for k in np.unique(labels)) / len(codes)
    return np.where(total > 1e-12, between / np.maximum(total, 1e-12), 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="a folder from `avsep preprocess`")
    parser.add_argument("--index", default="train.csv", help="index file under DATA (default: train.csv)")
    args = parser.parse_args()
    try:
        model, cfg, _ = load_model(args.checkpoint)
        rows = read_index(args.data / args.index)
    except AvsepError as err:
        sys.exit(str(err))
    names = sorted({row.label for row in rows})
    if len(names) < 2:
        sys.exit(f"{args.data / args.index}: needs videos of 2 labels or more")
    model.eval()
    labels = np.array([names.index(row.label) for row in rows])
    codes = pooled_codes(model, cfg, rows)
    spread, share = codes.std(axis=0), label_share(codes, labels)
    live = spread >= DEAD_SPREAD
    print(f"{len(rows)} videos of {args.data / args.index}; {args.checkpoint}")
    print("channel  " + " ".join(f"{k:5d}" for k in range(codes.shape[1])))
    print("mean     " + " ".join(f"{v:5.2f}" for v in codes.mean(axis=0)))
    print("spread   " + " ".join(f"{v:5.2f}" for v in spread))
    print("label    " + " ".join(f"{v:5.2f}" for v in share))
    print(f"{int((~live).sum())} of {len(live)} channels dead (spread below {DEAD_SPREAD})")
    print("mean vector of each label over the live channels:")
    for k, name in enumerate(names):
        print(f"  {name:18s} " + " ".join(f"{v:5.2f}" for v in codes[labels == k][:, live].mean(axis=0)))
    centroids = np.stack([codes[labels == k].mean(axis=0) for k in range(len(names))])
    gaps = np.linalg.norm(centroids[:, None] - centroids[None], axis=-1) + np.eye(len(names)) * 1e9
    a, b = np.unravel_index(np.argmin(gaps), gaps.shape)
    print(f"closest labels: {names[a]} and {names[b]}, {gaps[a, b]:.3f} apart")


if __name__ == "__main__":
    main()
