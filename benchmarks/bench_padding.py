"""Circular padding by concatenation (avsep.models.networks.wrap) against torch's own.

The `small` preset pads its ResNet circularly. torch's ``padding_mode="circular"`` goes through
``F.pad``, which on channels-last CPU tensors costs a chain of copies; ``wrap`` builds the same
padded tensor with two concatenations. Both give the same values (gradients up to float
summation order; tests/models/test_networks.py);
this prints how long each takes, alternating them in one process so that the machine's load
affects both alike:

  * the vision network's forward and backward on one training batch of `small` (32 views);
  * the whole `small` training step (both networks, both losses, the optimiser) on one batch.

Usage:  python benchmarks/bench_padding.py [--rounds 5] [--steps 4]
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.config import Config  # noqa: E402
from avsep.models import networks  # noqa: E402
from avsep.models.sop import SoundOfPixels  # noqa: E402


@contextlib.contextmanager
def torch_padding():
    """Every avsep Conv2d, and the stem's max-pool, pad as torch does (``F.pad(mode="circular")``)."""
    ours, our_wrap = networks.Conv2d._conv_forward, networks.wrap
    networks.Conv2d._conv_forward = nn.Conv2d._conv_forward
    networks.wrap = lambda x, rows, cols: F.pad(x, (cols, cols, rows, rows), mode="circular")
    try:
        yield
    finally:
        networks.Conv2d._conv_forward, networks.wrap = ours, our_wrap


def training_batch(cfg: Config, batch: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    sources = torch.randn(batch, cfg.num_mix, cfg.audio_len, generator=generator) * 0.1
    owner = torch.arange(cfg.num_mix).view(1, -1, 1, 1).expand(batch, -1, cfg.grid_size, cfg.grid_size)
    return {"mix": sources.sum(1), "sources": sources, "owner": owner.contiguous(),
            "frames": torch.randn(batch, cfg.num_mix, 3, cfg.num_frames, cfg.img_size, cfg.img_size,
                                  generator=generator)}


def timed(step, steps: int) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


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
    batch = training_batch(cfg, cfg.batch_size)
    views = batch["frames"].flatten(0, 1)

    def vision():
        model.visual_grid(views).sum().backward()

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        training_loss(model, batch, cfg, torch.device("cpu")).backward()
        optimizer.step()

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; `small` preset, batch {cfg.batch_size}")
    for name, step in (("vision network forward+backward", vision), ("whole training step", train_step)):
        ratios, times = [], {"torch F.pad": [], "wrap": []}
        for _ in range(args.rounds):
            with torch_padding():
                times["torch F.pad"].append(timed(step, args.steps))
            times["wrap"].append(timed(step, args.steps))
            ratios.append(times["torch F.pad"][-1] / times["wrap"][-1])
        medians = {k: statistics.median(v) for k, v in times.items()}
        print(f"{name:<34} torch F.pad {medians['torch F.pad'] * 1000:7.1f} ms   wrap {medians['wrap'] * 1000:7.1f} ms"
              f"   ratio {statistics.median(ratios):.2f}x (median of {args.rounds} alternating rounds)")


if __name__ == "__main__":
    main()
