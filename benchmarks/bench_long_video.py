"""What an analysis holds per minute of video, and the peak memory of rendering several stems.

    python benchmarks/bench_long_video.py [--seconds 120] [--regions 6] [--rate 44100]

A `small` model with random weights analyses a generated clip (noise at ``--rate`` Hz, a 640 x 360
picture at 8 fps); what an analysis holds depends on the configuration and the clip's length, not
on the weights. Then ``--regions`` stems are rendered at once (``separate_regions``), and the rise
of the process's peak resident memory over that call is printed. To measure another version of
avsep, run the script with ``PYTHONPATH`` set to that tree.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.append(str(ROOT))   # after PYTHONPATH, so that another tree given there is the one measured

import avsep  # noqa: E402
from avsep.config import Config  # noqa: E402
from avsep.inference import Box, Point, Separator, VideoClip  # noqa: E402
from avsep.models.checkpoint import save_checkpoint  # noqa: E402
from avsep.models.sop import SoundOfPixels  # noqa: E402

REGIONS = [Point(100, 100), Point(500, 100), Box(0, 0, 320, 360), Box(320, 0, 640, 360), Point(300, 300),
           Point(10, 10), Box(100, 100, 540, 260), Point(600, 350)]


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux gives KiB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--regions", type=int, default=6, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--rate", type=int, default=44100, help="the clip's audio sample rate")
    args = parser.parse_args()
    if not (args.seconds > 0 and args.rate > 0):
        parser.error(f"--seconds {args.seconds:g} and --rate {args.rate}: both must be positive")
    torch.set_num_threads(2)
    cfg = Config.preset("small")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(int(args.seconds * args.rate))).astype(np.float32)
    picture = np.zeros((360, 640, 3), np.uint8)
    picture[:, :320] = 200
    clip = VideoClip(audio, args.rate, [picture] * int(args.seconds * 8), 8.0)
    with tempfile.TemporaryDirectory() as tmp:
        separator = Separator(save_checkpoint(Path(tmp) / "random.pt", SoundOfPixels(cfg), cfg), device="cpu")
        began = time.perf_counter()
        analysis = separator.analyze(clip, progress=False)
        analysed = time.perf_counter() - began
    held = {name: value.numel() * value.element_size() for name, value in vars(analysis).items() if torch.is_tensor(value)}
    held.update({name: value.nbytes for name, value in vars(analysis).items() if isinstance(value, np.ndarray)})
    minutes = args.seconds / 60
    print(f"avsep from {Path(avsep.__file__).parent.parent}; `small`, {args.seconds:g} s at {args.rate} Hz, "
          f"{len(analysis.starts)} windows, analysed in {analysed:.1f} s")
    for name, size in sorted(held.items(), key=lambda item: -item[1])[:5]:
        print(f"  {name:<16}{size / 2**20 / minutes:8.1f} MiB a minute")
    print(f"  {'all':<16}{sum(held.values()) / 2**20 / minutes:8.1f} MiB a minute")
    before = peak_rss_mib()
    began = time.perf_counter()
    analysis.separate_regions(REGIONS[:args.regions])
    print(f"{args.regions} stems rendered in {time.perf_counter() - began:.1f} s; peak resident memory rose by "
          f"{peak_rss_mib() - before:.0f} MiB (to {peak_rss_mib():.0f} MiB)")


if __name__ == "__main__":
    main()
