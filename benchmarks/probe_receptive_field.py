"""How far around its square does a cell of the vision network look?

    python benchmarks/probe_receptive_field.py --checkpoint RUN/best.pt [--checkpoint ...]
    python benchmarks/probe_receptive_field.py --preset small --set resnet_stages=3   # untrained

For each model, the share of a cell's input gradient (the squared norm of its visual logits,
before the activation, differentiated with respect to the pixels) that lies within 16, 32 and
48 pixels of the centre of the cell's square, along each axis with the frame wrapped as circular
padding wraps it. The frames are uniform noise of a duet's shape at the model's scale (twice as
wide as high), and three cells (left, centre, upper right) over ``--trials`` frames are averaged.
A share near 1 at 16 pixels means the cell describes its own place; a small one means it
describes the frame around it, so that the energy maps can put a player's sound on a silent
object beside it (docs/training.md, "Cells that see less around them").

Distances are from the centre of each cell's square, where a model with ``visual_centred`` looks;
a model without it looks half a cell before (up and left), so its shares come out lower by that shift.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.config import Config  # noqa: E402
from avsep.models.checkpoint import load_model  # noqa: E402
from avsep.models.sop import SoundOfPixels  # noqa: E402

RADII = (16, 32, 48)


def gradient_shares(model: SoundOfPixels, trials: int = 4) -> dict[int, float]:
    """Mean share of each cell's gradient within each of RADII pixels of its square's centre."""
    cfg = model.cfg
    height, width = cfg.img_size, 2 * cfg.img_size
    rows, cols = np.mgrid[:height, :width] + 0.5
    shares: dict[int, list[float]] = {r: [] for r in RADII}
    generator = torch.Generator().manual_seed(0)
    for _ in range(trials):
        frames = (torch.rand(1, 3, 1, height, width, generator=generator) * 2 - 1).requires_grad_(True)
        logits = model.frame_net.grid(model.network_frames(frames))    # (1, K, 1, h, w)
        h, w = logits.shape[-2:]
        for row, col in ((h // 2, w // 4), (h // 2, w // 2), (2, 3 * w // 4)):
            gradient, = torch.autograd.grad((logits[0, :, 0, row, col] ** 2).sum(), frames, retain_graph=True)
            weight = gradient.abs().sum(dim=(0, 1, 2)).numpy()
            dy = circular_distance(rows, (row + 0.5) * cfg.visual_stride, height)
            dx = circular_distance(cols, (col + 0.5) * cfg.visual_stride, width)
            for radius in RADII:
                shares[radius].append(float(weight[np.maximum(dy, dx) <= radius].sum() / weight.sum()))
    return {r: float(np.mean(v)) for r, v in shares.items()}


def circular_distance(positions: np.ndarray, centre: float, size: int) -> np.ndarray:
    distance = np.abs(positions - centre) % size
    return np.minimum(distance, size - distance)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", action="append", default=[], help="a trained model (repeatable)")
    parser.add_argument("--preset", help="an untrained model of this preset")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="overrides of --preset")
    parser.add_argument("--trials", type=int, default=4)
    args = parser.parse_args()
    torch.set_num_threads(2)
    models = [(path, load_model(path)[0]) for path in args.checkpoint]
    if args.preset:
        torch.manual_seed(0)
        cfg = Config.preset(args.preset).with_overrides(args.set)
        models.append((f"untrained {args.preset} {' '.join(args.set)}".strip(), SoundOfPixels(cfg)))
    if not models:
        parser.error("give --checkpoint or --preset")
    if args.set and not args.preset:
        parser.error("--set changes --preset: give --preset too")
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    print("share of a cell's gradient within " + ", ".join(f"{r} px" for r in RADII))
    for name, model in models:
        shares = gradient_shares(model.eval(), args.trials)
        print(f"{name}: " + ", ".join(f"{shares[r]:.0%}" for r in RADII))


if __name__ == "__main__":
    main()
