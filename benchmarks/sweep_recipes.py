"""Train several recipes and score each on held-out solo pairs at several step counts.

    python benchmarks/sweep_recipes.py --data /tmp/gen1/data --heldout /tmp/gen1/heldout/all.csv \
        --out /tmp/sweep --marks 1200 1800 2400 \
        --recipe base --recipe lr2x:lr_frame=2e-3,lr_sound=2e-3,lr_synth=2e-3 --recipe ema99:ema_decay=0.99

Each recipe (``NAME`` or ``NAME:KEY=VALUE,...``, overrides of the ``small`` preset) trains in its
own process, ``--parallel`` of them at a time, on ``--device`` (CUDA when there is one), with
``--workers`` loader processes. Keep ``--parallel 1`` on a single GPU: seven recipes sharing an
H200 as seven processes made at most 4.2 steps a second between them (none reached step 250 in
7 minutes); the GPU time-slices between processes, and this model's kernels are tiny. One recipe
at a time trained at about 7 steps a second sustained (fp32, 8 or 15 loaders, validation
included; docs/benchmarks.md, "CUDA"), so a GPU sweep is only about 4 times a 2-core CPU. At
each mark it continues training to that step (resuming its run folder, so a killed sweep picks up
where it stopped; marks already in ``results.jsonl`` are skipped), then scores its ``best.pt`` on ``--pairs`` held-out solo pairs and on the
validation split, and appends a line to ``OUT/results.jsonl``. The table at the end gives the
held-out gain over the mixture per recipe and mark.

Steps, not minutes, are what a sweep compares, so a sweep on a GPU ranks recipes for a CPU too
(the step a CPU reaches in a given time is in docs/benchmarks.md). A recipe that costs more per
step (a larger batch or network) has to be compared at fewer steps.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
import traceback
from multiprocessing.connection import wait
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.config import Config  # noqa: E402
from avsep.errors import AvsepError  # noqa: E402


def parse_recipe(text: str) -> tuple[str, list[str]]:
    """``name:k=v,k=v`` -> (name, ["k=v", "k=v"])."""
    name, _, rest = text.partition(":")
    return name, [kv for kv in rest.split(",") if kv]


def recorded_marks(results: Path, name: str) -> set[int]:
    """The marks already scored for recipe ``name`` (a rerun of a sweep skips them)."""
    if not results.is_file():
        return set()
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    return {row["mark"] for row in rows if row["recipe"] == name}


def train_and_score(name: str, overrides: list[str], args: argparse.Namespace) -> None:
    import torch

    from avsep.cli.quickstart import train_to
    from avsep.evaluation.evaluate import evaluate
    from avsep.models.checkpoint import load_checkpoint

    torch.set_num_threads(args.threads)
    run, results = args.out / name, args.out / "results.jsonl"
    last = run / "last.pt"
    cfg = Config.preset("small").with_overrides(overrides).replace(epochs=100_000)
    state = load_checkpoint(last) if last.is_file() else None
    if state is not None and Config.from_dict(state["config"]) != cfg:
        raise SystemExit(f"{run}: trained with another configuration than recipe {name!r}; use a new --out or name")
    done = state["train_state"]["step"] if state else 0
    done_marks = recorded_marks(results, name)
    for mark in args.marks:
        if mark in done_marks:
            continue
        if done > mark:
            print(f"{name}: {last} is at step {done}, past mark {mark}, which was never scored: skipped", flush=True)
            continue
        began = time.monotonic()
        best, done = train_to(cfg, args.data, run, mark, None, args.workers, device=args.device, progress=False)
        trained = load_checkpoint(last)["train_state"]
        scores = {}
        for split, index in (("held_out", args.heldout), ("in_distribution", args.data / "val.csv")):
            summary = evaluate(best, index, pairs=args.pairs, device=args.device, progress=False)
            scores[split] = {"SDR": summary["model"]["SDR"]["median"], "SIR": summary["model"]["SIR"]["median"],
                             "mixture_SDR": summary["mixture"]["SDR"]["median"]}
        line = {"recipe": name, "overrides": overrides, "mark": mark, "best_step": trained["best_step"],
                "best_val_sdr": trained["best_sdr"], "train_seconds": trained["seconds"],
                "wall_seconds": time.monotonic() - began, **scores}
        with open(results, "a") as f:  # one short line per write: appends do not interleave
            f.write(json.dumps(line) + "\n")
        print(f"{name} @ {mark}: held-out {scores['held_out']['SDR'] - scores['held_out']['mixture_SDR']:+.2f} dB, "
              f"in-distribution {scores['in_distribution']['SDR'] - scores['in_distribution']['mixture_SDR']:+.2f} dB",
              flush=True)


def _run(name: str, overrides: list[str], args: argparse.Namespace) -> None:
    try:
        train_and_score(name, overrides, args)
    except Exception:  # the process exits non-zero; the other recipes go on
        print(f"{name}: failed\n{traceback.format_exc()}", flush=True)
        raise SystemExit(1)


def table(results: Path) -> str:
    """Held-out gain (SIR) / in-distribution gain per recipe and mark, from results.jsonl."""
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    lines = [f"{'recipe':<16}{'mark':>6}{'best':>6}{'held-out gain':>15}{'SIR':>7}{'in-dist gain':>14}"]
    for r in sorted(rows, key=lambda r: (r["recipe"], r["mark"])):
        ho, ind = r["held_out"], r["in_distribution"]
        lines.append(f"{r['recipe']:<16}{r['mark']:>6}{r['best_step']:>6}{ho['SDR'] - ho['mixture_SDR']:>+15.2f}"
                     f"{ho['SIR']:>7.2f}{ind['SDR'] - ind['mixture_SDR']:>+14.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="folder with train.csv and val.csv")
    parser.add_argument("--heldout", type=Path, required=True, help="index of held-out solo videos")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--recipe", action="append", required=True, metavar="NAME[:KEY=VALUE,...]")
    parser.add_argument("--marks", type=int, nargs="+", default=[1200, 1800, 2400], help="steps to score at")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workers", type=int, default=2, help="loader processes per recipe")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per recipe")
    parser.add_argument("--parallel", type=int, default=1, help="recipes training at the same time")
    args = parser.parse_args()
    if args.parallel < 1 or args.threads < 1 or args.workers < 0 or args.pairs < 1:
        parser.error("--parallel, --threads and --pairs must be at least 1, --workers at least 0")
    if min(args.marks) < 1 or len(set(args.marks)) < len(args.marks):
        parser.error("--marks: distinct positive steps")
    args.marks = sorted(args.marks)
    recipes = [parse_recipe(r) for r in args.recipe]
    names = [name for name, _ in recipes]
    if len(set(names)) < len(names) or not all(n and n.replace("_", "").replace("-", "").replace(".", "").isalnum()
                                              for n in names):
        parser.error("--recipe: names must differ, and be letters, digits, '_', '-' or '.'")
    for name, overrides in recipes:  # bad keys fail here, in one line, before any process starts
        try:
            Config.preset("small").with_overrides(overrides)
        except AvsepError as err:
            parser.error(f"--recipe {name}: {err}")
    args.out.mkdir(parents=True, exist_ok=True)
    ctx = mp.get_context("spawn")
    running: list = []
    failed = []
    for name, overrides in recipes:
        while len(running) >= args.parallel:  # start the next recipe when any one finishes
            wait([p.sentinel for _, p in running])
            failed += [n for n, p in running if p.exitcode not in (None, 0)]
            running = [(n, p) for n, p in running if p.exitcode is None]
        process = ctx.Process(target=_run, args=(name, overrides, args))  # not a daemon: it has loaders
        process.start()
        running.append((name, process))
    for name, process in running:
        process.join()
        if process.exitcode != 0:
            failed.append(name)
    results = args.out / "results.jsonl"
    print(table(results) if results.is_file() else "no results")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
