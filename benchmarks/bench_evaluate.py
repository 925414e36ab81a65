"""Time `avsep evaluate` on 100 mixtures of 6 s clips, and the BSS Eval scoring within it.

Generates and preprocesses a few solo videos (or uses --data), saves a randomly initialised
`sop` checkpoint (scores are meaningless; time is what is measured), then prints:
  * the whole evaluation (loading, both networks, resynthesis, scoring) per 100 mixtures;
  * the scoring alone: BSS Eval of the model's estimates and of the mixture baseline.

Usage:  python benchmarks/bench_evaluate.py [--pairs 100] [--data PREPROCESSED_FOLDER]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.models.checkpoint import save_checkpoint  # noqa: E402
from avsep.config import Config  # noqa: E402
from avsep.evaluation.evaluate import evaluate, score_mixture  # noqa: E402
from avsep.models.sop import SoundOfPixels  # noqa: E402


def prepare_data(folder: Path) -> Path:
    from avsep.data.preprocess import preprocess
    from avsep.synth import make_solo_collection

    make_solo_collection(folder / "videos", videos_per_label=4, seconds=8.0, workers=2, progress=False)
    preprocess(folder / "videos", folder / "data", workers=2, val_frac=0, test_frac=0.5, progress=False)
    return folder / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--data", type=Path, help="a folder from `avsep preprocess` (default: generate one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or prepare_data(Path(tmp))
        cfg = Config.preset("sop").replace(imagenet_pretrained=False)
        checkpoint = save_checkpoint(Path(tmp) / "sop.pt", SoundOfPixels(cfg), cfg)
        start = time.perf_counter()
        summary = evaluate(checkpoint, data / "test.csv", pairs=args.pairs, progress=False)
        total = time.perf_counter() - start

    rng = np.random.default_rng(0)
    sources = rng.standard_normal((2, cfg.audio_len))
    estimate = sources + 0.3 * rng.standard_normal((2, cfg.audio_len))
    start = time.perf_counter()
    for _ in range(10):
        score_mixture(sources, {"model": estimate}, sources.sum(axis=0))
    scoring = (time.perf_counter() - start) / 10 * args.pairs

    print(f"avsep evaluate, sop, {summary['pairs']} mixtures of 2 x 6 s, CPU: {total:.1f} s "
          f"({total / summary['pairs']:.2f} s per mixture)")
    print(f"of which BSS Eval scoring (model + mixture baseline), per {args.pairs} mixtures: {scoring:.1f} s")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
