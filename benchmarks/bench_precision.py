"""fp32 against bfloat16 autocast for a `small` training step on this machine's CPU.

    python benchmarks/bench_precision.py --data /tmp/gen/data [--rounds 5] [--threads 2]

Two measurements, each alternating fp32 and bf16 so that both see the same machine noise:

* **the model's step**: loss, backward and Adam step on one fixed batch, in this process
  (``--threads`` torch threads), two steps per round;
* **the trainer's step**: :class:`avsep.training.trainer.Trainer` itself (2 data loaders, no
  validation) for 70 steps in a child process, timed from step 20 to 70 by its ``log.csv``.

bf16 pays only where the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX, see
``lscpu | grep -o 'avx512_bf16\\|amx_bf16'``); elsewhere torch emulates it and it is slower.
"""
from __future__ import annotations

import argparse
import contextlib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avsep.config import Config  # noqa: E402


def model_step_ms(data: Path, rounds: int) -> dict[str, list[float]]:
    """Milliseconds of one step on a fixed batch, per precision, alternating."""
    from torch.utils.data import DataLoader

    from avsep.data.index import read_index
    from avsep.data.mixtures import MixtureDataset, check_rows
    from avsep.models.sop import SoundOfPixels
    from avsep.training.trainer import training_loss

    cfg = Config.preset("small")
    rows = check_rows(read_index(data / "train.csv"), data / "train.csv")
    batch = next(iter(DataLoader(MixtureDataset(rows, cfg, train=True), batch_size=cfg.batch_size)))
    cpu = torch.device("cpu")
    setups = {}
    for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
        torch.manual_seed(0)
        model = SoundOfPixels(cfg)
        setups[name] = (model, torch.optim.Adam(model.parameters(), 1e-3), dtype)

    def step(name: str) -> None:
        model, optimizer, dtype = setups[name]
        with torch.autocast("cpu", dtype=dtype) if dtype else contextlib.nullcontext():
            loss = training_loss(model, batch, cfg, cpu)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    times: dict[str, list[float]] = {name: [] for name in setups}
    for name in setups:  # warm-up: allocator, oneDNN kernels
        step(name)
    for _ in range(rounds):
        for name in setups:
            began = time.perf_counter()
            step(name)
            step(name)
            times[name].append((time.perf_counter() - began) / 2 * 1000)
    return times


def trainer_step_ms(data: Path, precision: str, threads: int, root: Path = ROOT, steps: int = 70,
                    overrides: Sequence[str] = ()) -> float:
    """Milliseconds per step of the real trainer (2 loaders), steps 20 to ``steps``, in a child
    process that imports ``avsep`` from ``root`` (``overrides``: ``KEY=VALUE`` of the preset)."""
    with tempfile.TemporaryDirectory() as tmp:
        code = (f"import torch, sys; sys.path.insert(0, {str(root)!r}); torch.set_num_threads({threads})\n"
                "from pathlib import Path\nfrom avsep.config import Config, RunSettings\n"
                "from avsep.training.trainer import Trainer\n"
                f"cfg = Config.preset('small').with_overrides({list(overrides)!r})"
                f".replace(val_every=10_000, epochs=max(10, {steps} // 60 + 1))\n"
                f"s = RunSettings(workers=2, max_steps={steps}, progress=False, precision={precision!r})\n"
                f"Trainer(cfg, Path({str(data / 'train.csv')!r}), None, Path({tmp!r}) / 'run', s).fit()\n")
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if child.returncode != 0:
            raise SystemExit(f"the {precision} trainer run failed:\n{child.stderr[-2000:]}")
        rows = (Path(tmp) / "run" / "log.csv").read_text().replace("\r", "").splitlines()[1:]
        seconds = {int(r.split(",")[0]): float(r.split(",")[2]) for r in rows}
        return (seconds[steps] - seconds[20]) / (steps - 20) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a preprocessed folder with train.csv")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--trainer-rounds", type=int, default=2, help="alternating child runs of the trainer")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not (args.data / "train.csv").is_file():
        parser.error(f"--data {args.data}: no train.csv there")
    torch.set_num_threads(args.threads)

    model = model_step_ms(args.data, args.rounds)
    trainer: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(args.trainer_rounds):
        for name in trainer:
            trainer[name].append(trainer_step_ms(args.data, name, args.threads))
    print(f"{'':<34}{'fp32':>10}{'bf16':>10}{'ratio':>8}")
    for label, times in (("model step, fixed batch (median)", model), ("trainer step, 2 loaders (median)", trainer)):
        fp32, bf16 = statistics.median(times["fp32"]), statistics.median(times["bf16"])
        print(f"{label:<34}{fp32:>8.0f}ms{bf16:>8.0f}ms{fp32 / bf16:>7.2f}x")
        print(f"{'  every round':<34}{str([round(t) for t in times['fp32']]):>10} / {[round(t) for t in times['bf16']]}")


if __name__ == "__main__":
    main()
