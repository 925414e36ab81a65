"""The training data path before and after a change: item cost and the trainer's step, alternating.

    git worktree add /tmp/before <ref>      # the code to compare against
    python benchmarks/bench_data_path.py --data /tmp/gen/data --before /tmp/before [--rounds 3] [--set KEY=VALUE ...]

Both trees run in child processes (each imports its own ``avsep``), one after the other in each
round, so that both see the same machine noise:

* **an item**: ``MixtureDataset`` items of the `small` preset built one after the other in one
  thread (what each loader process does), ms an item;
* **the trainer's step**: :class:`avsep.training.trainer.Trainer` itself (2 loaders, no
  validation, ``--precision``) for ``--steps`` steps, timed from step 20 to the last by its
  ``log.csv``; 200 steps span three epoch ends of the preset (62 steps an epoch).

On 2 cores the loaders and the model's two threads share the cores, so a cheaper item shortens
the step even though the loaders work while the model does. ``--set`` overrides the `small`
preset in both trees alike (``audio_len=32767`` compares at 3 s clips whatever either preset says).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

from bench_precision import trainer_step_ms  # the trainer's step in a child process, from any tree

ROOT = Path(__file__).resolve().parents[1]

ITEM_CODE = """
import sys, time, torch
sys.path.insert(0, {root!r})
from pathlib import Path
from avsep.config import Config
from avsep.data.index import read_index
from avsep.data.mixtures import MixtureDataset, check_rows
torch.set_num_threads(1)
index = Path({index!r})
dataset = MixtureDataset(check_rows(read_index(index), index), Config.preset('small').with_overrides({sets!r}), train=True)
for i in range(10):
    dataset[i]
began = time.perf_counter()
for i in range({items}):
    dataset[100 + i]
print((time.perf_counter() - began) / {items} * 1000)
"""

def child(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"a child run failed:\n{done.stderr[-2000:]}")
    return done.stdout


def item_ms(root: Path, index: Path, items: int, sets: list[str]) -> float:
    return float(child(ITEM_CODE.format(root=str(root), index=str(index), items=items, sets=sets)).split()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a preprocessed folder with train.csv")
    parser.add_argument("--before", type=Path, required=True, help="a checkout of the code to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--items", type=int, default=300)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--precision", default="bf16", choices=("fp32", "bf16"))
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the `small` preset in both trees")
    args = parser.parse_args()
    index = args.data / "train.csv"
    if not index.is_file():
        parser.error(f"--data {args.data}: no train.csv there")
    if not (args.before / "avsep" / "__init__.py").is_file():
        parser.error(f"--before {args.before}: not a checkout of avsep")
    trees = {"before": args.before.resolve(), "after": ROOT}
    items: dict[str, list[float]] = {name: [] for name in trees}
    steps: dict[str, list[float]] = {name: [] for name in trees}
    for round_ in range(args.rounds):
        for name, root in trees.items():
            items[name].append(item_ms(root, index, args.items, args.overrides))
            steps[name].append(trainer_step_ms(args.data, args.precision, 2, root, args.steps, args.overrides))
            print(f"round {round_ + 1} {name}: item {items[name][-1]:.2f} ms, step {steps[name][-1]:.0f} ms", flush=True)
    print(f"{'':<36}{'before':>10}{'after':>10}{'ratio':>8}")
    for label, times in (("an item, 1 thread (median)", items), (f"trainer step, 2 loaders, {args.precision} (median)", steps)):
        before, after = statistics.median(times["before"]), statistics.median(times["after"])
        print(f"{label:<36}{before:>8.2f}ms{after:>8.2f}ms{before / after:>7.2f}x")


if __name__ == "__main__":
    main()
