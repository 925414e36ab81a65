"""Scaling out: training throughput on 1 vs N processes (DDP), loaders from shards vs folders, file counts.

Prints, for this machine:
  * training samples/s per process (per GPU with CUDA) and in all, at the `sop` and `small`
    presets, for 1 process and for N processes under torchrun (DDP; gloo on CPU, NCCL on GPUs).
    On CPU, N = 2 and each process gets cores / N threads, so the total compares one process
    using every core with N processes sharing them; one process on one thread is measured too,
    the baseline of each of the N processes. With CUDA, N = the number of GPUs and each
    process has one GPU. Steps run on random inputs (no loading), as in bench_core.py;
  * data-loading samples/s of one loader worker (one thread, in this process) building `sop`
    training items from preprocessed folders and from tar shards of the same generated videos;
    for shards, both the worst case (every mixture reads both its videos from the shard: a
    shuffle buffer of 2) and the default buffer of 64 videos;
  * the number of files of the folder and of the shards, and the same ratio at VGGSound's scale.

Usage:  python benchmarks/bench_scaling.py [--steps 4] [--samples 120] [--precision fp32] [--json]
        python benchmarks/bench_scaling.py --presets ""      # loading and file counts only
        python benchmarks/bench_scaling.py --agreement 1234,1,2,3   # the 1-vs-2-process tolerance

``--agreement`` trains the test suite's tiny configuration for 12 steps on the tiny dataset, on 1
process and on 2 (torchrun, gloo), once per seed, and prints the validation median SDRs, their
seed-to-seed standard deviations and the bound tests/training/test_distributed.py uses (three
standard deviations of the difference of two runs).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avsep.config import Config  # noqa: E402

# Per-process batch of each preset: weak scaling, so the global batch grows with the processes.
BATCH = {"sop": 2, "small": 16}


# --- training (runs in every process that torchrun starts) ------------------------------------

def measure_train(preset: str, batch: int, steps: int, precision: str, out: Path) -> None:
    from avsep.models.sop import SoundOfPixels
    from avsep.training import distributed
    from avsep.training.engine import TrainingObjective, optimizer_step, resolve_precision, wrap_objective
    from avsep.training.trainer import make_optimizer, training_loss

    ctx = distributed.setup("auto")
    cfg = Config.preset(preset).replace(imagenet_pretrained=False, batch_size=batch * ctx.world)
    torch.manual_seed(ctx.rank)
    model = SoundOfPixels(cfg).to(ctx.device).train()
    optimizer = make_optimizer(model, cfg)
    step = wrap_objective(TrainingObjective(model, lambda m, b: training_loss(m, b, cfg, ctx.device), ctx.device),
                          ctx, compile_step=False)
    mix_sources = torch.randn(batch, cfg.num_mix, cfg.audio_len) * 0.1
    data = {"mix": mix_sources.sum(1), "sources": mix_sources,
            "frames": torch.randn(batch, cfg.num_mix, 3, cfg.num_frames, cfg.img_size, cfg.img_size),
            "owner": torch.arange(cfg.num_mix).view(1, -1, 1, 1).expand(batch, -1, cfg.grid_size, cfg.grid_size).clone()}
    if ctx.device.type == "cuda":
        data = {k: v.pin_memory() for k, v in data.items()}
    precision_mode = resolve_precision(precision, ctx.device)
    times = []
    for _ in range(steps + 1):  # the first step warms up allocators and kernels
        if ctx.device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        optimizer_step(step, data, optimizer, precision_mode)  # .item() waits for the GPU
        times.append(time.perf_counter() - start)
    per_rank = ctx.gather(float(np.median(times[1:])))
    if ctx.is_main:
        step_s = max(per_rank)  # DDP keeps the ranks in step: the slowest sets the pace
        out.write_text(json.dumps({"processes": ctx.world, "batch_per_process": batch, "step_s": step_s,
                                   "per_process": batch / step_s, "total": batch * ctx.world / step_s,
                                   "device": str(ctx.device), "precision": precision_mode.name,
                                   "threads": torch.get_num_threads()}))
    distributed.teardown(ctx)


def bench_train(preset: str, processes: int, steps: int, precision: str, threads: int = 0) -> dict:
    """One torchrun measurement; on CPU each process gets ``threads`` threads (default: its share)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               __file__, "--measure-train", preset, str(BATCH[preset]), str(steps), precision, str(out)]
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        if not torch.cuda.is_available():
            env["OMP_NUM_THREADS"] = str(threads or max(1, (os.cpu_count() or 1) // processes))
        result = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise SystemExit(f"training benchmark failed:\n{result.stderr[-3000:]}")
        return json.loads(out.read_text())


# --- loading ---------------------------------------------------------------------------------

def make_data(folder: Path, videos_per_label: int) -> Path:
    from avsep.data.preprocess import preprocess
    from avsep.synth import make_solo_collection

    make_solo_collection(folder / "videos", videos_per_label=videos_per_label, seconds=8.0, progress=False)
    preprocess(folder / "videos", folder / "data", val_frac=0, test_frac=0, progress=False)
    return folder / "data"


def rate(items) -> float:
    """Items per second, after the first (page cache, lazy set-up)."""
    iterator = iter(items)
    next(iterator)
    start, count = time.perf_counter(), 0
    for _ in iterator:
        count += 1
    return count / (time.perf_counter() - start)


def bench_loading(data: Path, shards: Path, samples: int) -> dict:
    """One worker's samples/s: this process, one thread, as a loader worker runs."""
    from avsep.data.index import read_index
    from avsep.data.mixtures import MixtureDataset
    from avsep.data.shard_stream import ShardStream
    from avsep.data.shards import read_split

    torch.set_num_threads(1)
    cfg = Config.preset("sop")
    folder = MixtureDataset(read_index(data / "train.csv"), cfg, length=samples + 1)
    split = read_split(shards / "train.json")
    out = {"folders": rate(folder[i] for i in range(samples + 1))}
    for name, buffer in (("shards_worst", 2), ("shards_buffer64", 64)):
        # epoch_size = videos / 2 with a buffer of 2: each mixture reads 2 new videos from the shard
        stream_cfg = cfg.replace(batch_size=1, epoch_size=max(2, len(split.samples) // 2 if buffer == 2 else samples))
        stream = ShardStream(split, stream_cfg, seed=0, buffer=buffer)

        def items(stream=stream):
            epoch, made = 0, 0
            while made <= samples:
                stream.epoch = epoch
                for item in stream:
                    made += 1
                    yield item
                    if made > samples:
                        return
                epoch += 1
        out[name] = rate(items())
    return out


def agreement(seeds: list[int]) -> None:
    from avsep.models.checkpoint import load_checkpoint
    from tests.conftest import write_tiny_dataset
    from tests.training.test_distributed import TINY_DDP

    scores = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "tiny"
        write_tiny_dataset(data)
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        for seed in seeds:
            args = ["train", "--data", str(data), *TINY_DDP, "--set", f"seed={seed}", "--max-steps", "12"]
            row = []
            for name, launcher in (("one", [sys.executable, "-m", "avsep"]),
                                   ("two", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                            "--nproc_per_node=2", "-m", "avsep"])):
                out = Path(tmp) / f"{name}{seed}"
                subprocess.run([*launcher, *args, "--out", str(out)], check=True, env=env, capture_output=True)
                row.append(load_checkpoint(out / "last.pt")["val_sdr"])
            scores.append(row)
            print(f"seed {seed:>5}: 1 process {row[0]:7.3f} dB   2 processes {row[1]:7.3f} dB   "
                  f"difference {row[0] - row[1]:+.3f} dB", flush=True)
    one, two = np.array(scores).T
    sigma = float(np.hypot(one.std(ddof=1), two.std(ddof=1)))
    print(f"seed-to-seed sigma: {one.std(ddof=1):.3f} dB on 1 process, {two.std(ddof=1):.3f} dB on 2; "
          f"of a difference {sigma:.3f} dB; 3 sigma = {3 * sigma:.2f} dB; largest |difference| "
          f"{np.abs(one - two).max():.3f} dB")


def count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=4, help="timed training steps per measurement")
    parser.add_argument("--samples", type=int, default=120, help="items drawn per loader measurement")
    parser.add_argument("--videos-per-label", type=int, default=4, help="generated videos per label for loading")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--presets", default="small,sop")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--agreement", metavar="SEEDS", help="only measure the 1-vs-2-process agreement")
    parser.add_argument("--measure-train", nargs=5, metavar=("PRESET", "BATCH", "STEPS", "PRECISION", "OUT"),
                        help=argparse.SUPPRESS)  # the worker side of the training measurement
    args = parser.parse_args()
    if args.measure_train:
        preset, batch, steps, precision, out = args.measure_train
        return measure_train(preset, int(batch), int(steps), precision, Path(out))

    if args.agreement:
        return agreement([int(seed) for seed in args.agreement.split(",")])
    cuda = torch.cuda.is_available()
    many = torch.cuda.device_count() if cuda else 2
    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                                + (f"{many} x {torch.cuda.get_device_name(0)}" if cuda else "no GPU: CPU figures")}
    # On CPU also one process on one thread: the per-process baseline of the N-process figure.
    runs = ([(1, 0)] + [(many, 0)] * (many > 1)) if cuda else [(1, 0), (1, 1), (many, 0)]
    results["train"] = {preset: [bench_train(preset, p, args.steps, args.precision, t) for p, t in runs]
                        for preset in args.presets.split(",") if preset}
    with tempfile.TemporaryDirectory() as tmp:
        from avsep.data.shard_writer import write_shards

        data = make_data(Path(tmp), args.videos_per_label)
        summary = write_shards(data, Path(tmp) / "shards", progress=False)
        results["files"] = {"folders": count_files(data), "shards": count_files(Path(tmp) / "shards"),
                            "videos": summary["splits"]["train"]["videos"]}
        results["loading"] = bench_loading(data, Path(tmp) / "shards", args.samples)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    report(results)


def report(results: dict) -> None:
    unit = "GPU" if "no GPU" not in results["machine"] else "process"
    print(f"machine: {results['machine']}")
    precision = next(iter(results["train"].values()), [{"precision": "-"}])[0]["precision"]
    print(f"{'training (' + precision + ')':<34}"
          f"{'processes':>10}{'batch/' + unit:>14}{'samples/s per ' + unit:>24}{'in all':>10}")
    for preset, rows in results["train"].items():  # none with --presets ""
        for row in rows:
            threads = f" x {row['threads']} thr" if unit == "process" else ""
            print(f"{preset:<34}{str(row['processes']) + threads:>10}{row['batch_per_process']:>14}"
                  f"{row['per_process']:>24.2f}{row['total']:>10.2f}")
    load = results["loading"]
    print("data loading, sop items, one worker (1 thread)        samples/s")
    print(f"  preprocessed folders                              {load['folders']:>10.1f}")
    print(f"  tar shards, every mixture reads its 2 videos      {load['shards_worst']:>10.1f}")
    print(f"  tar shards, shuffle buffer of 64 videos           {load['shards_buffer64']:>10.1f}")
    files = results["files"]
    per_video = files["folders"] / max(1, files["videos"])
    vgg = 200_000 * (1 + 80)  # 10 s clips at 8 fps: a WAV and 80 JPEGs each
    vgg_shards = 200_000 * 1.5 / 512 + 4  # about 1.5 MB a clip in 512 MB shards, plus manifests and ledger
    print(f"files: {files['folders']} in the folder ({files['videos']} videos, {per_video:.0f} per video) -> "
          f"{files['shards']} as shards ({files['folders'] / files['shards']:.0f}x fewer)")
    print(f"at VGGSound's scale (200k 10 s clips at 8 fps): {vgg / 1e6:.1f} M files -> about {vgg_shards:.0f} "
          f"({vgg / vgg_shards:,.0f}x fewer)")


if __name__ == "__main__":
    main()
