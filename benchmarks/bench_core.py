"""Speed and memory of the core: training, data loading and inference.

Prints, for this machine:
  * training throughput (samples/s) for the `sop` preset at batch 4 and for `small`;
  * data-loading throughput (samples/s) of one loader worker, for `sop` training samples;
  * the time to infer one 6 s clip at `sop`, pooled (one mask per video) and per-pixel;
  * the peak resident memory of each measurement (each runs in its own process).

Usage:  python benchmarks/bench_core.py [--steps 6] [--json]

Targets on a quiet 2-core CPU (see docs/benchmarks.md): training >= 0.6 samples/s at sop/batch 4,
loading >= 20 sop samples/s per worker, per-pixel inference <= 0.5 s per 6 s clip.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.config import Config  # noqa: E402
from avsep.models.sop import SoundOfPixels  # noqa: E402
from avsep.dsp.inputs import mixture_features  # noqa: E402

TARGETS = {"train_sop_b4": 0.6, "loader_sop_1worker": 20.0, "infer_pixel_s": 0.5}


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_train(preset: str, batch: int, steps: int) -> dict:
    from avsep.dsp.masks import loss_weight, mask_loss, target_masks
    from avsep.training.trainer import make_optimizer

    cfg = Config.preset(preset).replace(batch_size=batch, imagenet_pretrained=False)
    model = SoundOfPixels(cfg).train()
    optimizer = make_optimizer(model, cfg)
    sources = torch.randn(batch, cfg.num_mix, cfg.audio_len) * 0.1
    frames = torch.randn(batch, cfg.num_mix, 3, cfg.num_frames, cfg.img_size, cfg.img_size)
    times = []
    for _ in range(steps + 1):  # the first step warms up allocators and kernels
        start = time.perf_counter()
        features = mixture_features(sources.sum(1), cfg, sources)
        logits = model(features.log_mix_mag, frames)
        loss = mask_loss(logits, target_masks(features.source_mags, features.mix_mag, cfg.mask_type), cfg,
                         loss_weight(features.mix_mag))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    step = float(np.median(times[1:]))
    return {"samples_per_s": batch / step, "step_s": step, "peak_mb": peak_mb()}


def bench_loader(samples: int) -> dict:
    from avsep.data.mixtures import MixtureDataset, make_loader
    from avsep.data.index import read_index
    from avsep.synth import make_solo_collection
    from avsep.data.preprocess import preprocess

    cfg = Config.preset("sop")
    with tempfile.TemporaryDirectory() as tmp:
        make_solo_collection(Path(tmp) / "videos", videos_per_label=2, seconds=8.0, progress=False)
        preprocess(Path(tmp) / "videos", Path(tmp) / "data", val_frac=0, test_frac=0, progress=False)
        dataset = MixtureDataset(read_index(Path(tmp) / "data" / "train.csv"), cfg, length=samples + 8)
        loader = make_loader(dataset, batch_size=4, workers=1)
        iterator = iter(loader)
        next(iterator), next(iterator)  # worker start-up and page cache are not loading speed
        start = time.perf_counter()
        count = sum(batch["mix"].shape[0] for batch in iterator)
        elapsed = time.perf_counter() - start
    return {"samples_per_s": count / elapsed, "peak_mb": peak_mb()}


@torch.no_grad()
def bench_inference(repeats: int) -> dict:
    cfg = Config.preset("sop").replace(imagenet_pretrained=False)
    model = SoundOfPixels(cfg).eval()
    mix = torch.randn(1, cfg.audio_len) * 0.1
    frames = torch.randn(1, 3, cfg.num_frames, cfg.img_size, cfg.img_size)

    def pooled():
        features = mixture_features(mix, cfg)
        return model.activate(model(features.log_mix_mag, frames.unsqueeze(1)))

    def per_pixel():
        features = mixture_features(mix, cfg)
        return model.activate(model.pixel_logits(features.log_mix_mag, frames))

    out = {}
    for name, fn in (("pooled", pooled), ("pixel", per_pixel)):
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        out[f"infer_{name}_s"] = float(np.median(times))
    out["peak_mb"] = peak_mb()
    return out


def _child(name: str, args: tuple, queue) -> None:
    torch.manual_seed(0)
    queue.put(globals()[name](*args))


def isolated(name: str, *args) -> dict:
    """Run one measurement in a fresh process, so its peak memory is its own."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per preset")
    parser.add_argument("--samples", type=int, default=200, help="samples drawn from the loader")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {
        "machine": f"{platform.processor() or platform.machine()}, {multiprocessing.cpu_count()} cores, "
                   f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        "train_sop_b4": isolated("bench_train", "sop", 4, args.steps),
        "train_small_b16": isolated("bench_train", "small", 16, args.steps),
        "loader_sop_1worker": isolated("bench_loader", args.samples),
        "inference_sop": isolated("bench_inference", 5),
    }
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"machine: {results['machine']}")
    rows = [
        ("training, sop, batch 4, 2-mix", f"{results['train_sop_b4']['samples_per_s']:.2f} samples/s",
         ">= 0.6", results["train_sop_b4"]["peak_mb"]),
        ("training, small, batch 16, 2-mix", f"{results['train_small_b16']['samples_per_s']:.1f} samples/s",
         "", results["train_small_b16"]["peak_mb"]),
        ("data loading, sop samples, 1 worker", f"{results['loader_sop_1worker']['samples_per_s']:.1f} samples/s",
         ">= 20", results["loader_sop_1worker"]["peak_mb"]),
        ("inference, sop, 6 s clip, pooled", f"{results['inference_sop']['infer_pooled_s']:.3f} s", "",
         results["inference_sop"]["peak_mb"]),
        ("inference, sop, 6 s clip, per-pixel", f"{results['inference_sop']['infer_pixel_s']:.3f} s", "<= 0.5",
         results["inference_sop"]["peak_mb"]),
    ]
    print(f"{'measurement':<40}{'result':>20}{'target':>10}{'peak RSS':>12}")
    for name, value, target, peak in rows:
        print(f"{name:<40}{value:>20}{target:>10}{peak:>9.0f} MB")


if __name__ == "__main__":
    main()
