"""What the moving average of the weights (``ema_decay``, avsep.training.averaging) costs a step.

Times the `small` training step on one batch with and without the average's update after it,
alternating the two in one process so that the machine's load affects both alike, and prints
the update's own time.

Usage:  python benchmarks/bench_averaging.py [--rounds 5] [--steps 4]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.config import Config  # noqa: E402
from avsep.models.sop import SoundOfPixels  # noqa: E402
from avsep.training.averaging import WeightAverage  # noqa: E402
from bench_padding import timed, training_batch  # noqa: E402


def main() -> None:
    from avsep.training.trainer import make_optimizer, training_loss

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    cfg = Config.preset("small")
    model = SoundOfPixels(cfg).train()
    optimizer = make_optimizer(model, cfg)
    average = WeightAverage(model, cfg.ema_decay)
    batch = training_batch(cfg, cfg.batch_size)
    counter = {"step": 0}

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        training_loss(model, batch, cfg, torch.device("cpu")).backward()
        optimizer.step()

    def update():
        counter["step"] += 1
        average.update(model, counter["step"])

    def train_step_and_update():
        train_step()
        update()

    params = sum(p.numel() for p in model.parameters())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; `small` preset ({params:,} parameters), "
          f"batch {cfg.batch_size}, ema_decay {cfg.ema_decay}")
    times = {"step": [], "step + average": [], "average alone": []}
    for _ in range(args.rounds):
        times["step"].append(timed(train_step, args.steps))
        times["step + average"].append(timed(train_step_and_update, args.steps))
        times["average alone"].append(timed(update, 20 * args.steps))
    medians = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"training step {medians['step']:.1f} ms; with the average's update {medians['step + average']:.1f} ms; "
          f"the update alone {medians['average alone']:.2f} ms ({medians['average alone'] / medians['step']:.1%} "
          f"of a step; medians of {args.rounds} alternating rounds)")


if __name__ == "__main__":
    main()
