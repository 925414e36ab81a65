"""Does separation transfer to scenes never seen in training? Train, then score in and out of distribution.

    python benchmarks/bench_generalization.py --workdir /tmp/gen --minutes 20
    python benchmarks/bench_generalization.py --workdir /tmp/gen --steps 1500 --name no_aug --set compose_prob=0
    python benchmarks/bench_generalization.py --workdir /tmp/gen --name no_aug --radius 0   # rescore: one-cell clicks
    python benchmarks/bench_generalization.py --workdir /tmp/gen --name small_4000 --continue-from small --steps 4000
    python benchmarks/bench_generalization.py --workdir /tmp/gen --name small_sparse --continue-from small \
        --steps 3350 --set pixel_sparsity=1    # a second stage with the push towards silence

Generates (once) train-pool solo videos, held-out solo videos and held-out duets
(:mod:`avsep.synth.demo`), trains the ``small`` preset (plus ``--set`` overrides) for
``--minutes`` of training time or ``--steps`` steps, then prints and saves
(``RUN/generalization.json``) the in-distribution figure, the held-out solo-pair figure, the
click SDR and the pointing rate on held-out duets, and the ideal-binary-mask bound. Runs that
exist are not trained again, so ablations share the data and can be rescored; a ``--steps``
beyond a run's last step continues it (``avsep train --resume``), and ``--continue-from RUN``
first copies RUN's folder, so that RUN keeps its own figures.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.cli.quickstart import config_changes, train_to  # noqa: E402
from avsep.cli.train import RESUMABLE_CHANGES  # noqa: E402
from avsep.config import MAP_WEIGHTINGS, QUERY_POOLS, Config, RunSettings  # noqa: E402
from avsep.errors import AvsepError  # noqa: E402
from avsep.evaluation.heldout import format_report, generalization_report  # noqa: E402
from avsep.evaluation.tables import json_safe  # noqa: E402
from avsep.synth.demo import check_heldout_backgrounds, prepare_demo  # noqa: E402
from avsep.synth.instruments import DEFAULT_PER_LABEL  # noqa: E402
from avsep.training.engine import PRECISION_CHOICES  # noqa: E402
from avsep.training.trainer import Trainer  # noqa: E402
from avsep.utils import atomic_write_text  # noqa: E402


def copy_run(source: Path, run: Path, overrides: list[str]) -> Config:
    """Copy run folder ``source`` to ``run`` (unless ``run`` exists: a continuation resumes), with
    ``overrides`` (only :data:`RESUMABLE_CHANGES`, as ``avsep train --resume`` takes them) written
    into the copy's configuration; returns the configuration the copy trains on."""
    if not (source / "last.pt").is_file():
        raise SystemExit(f"--continue-from: {source} has no last.pt")
    saved = Config.from_dict(torch.load(source / "last.pt", weights_only=True)["config"])
    cfg = saved.with_overrides(overrides)
    refused = [key for key in cfg.differences(saved) if key not in RESUMABLE_CHANGES]
    if refused:
        raise SystemExit(f"--continue-from: a continued run may change only {', '.join(sorted(RESUMABLE_CHANGES))}, "
                         f"not {', '.join(refused)}")
    if not run.exists():
        partial = run.with_name(run.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(source, partial, ignore=shutil.ignore_patterns("generalization*.json"))
        if overrides:  # the copy goes on with the changed options, as `avsep train --resume --set` would
            state = torch.load(partial / "last.pt", weights_only=True)
            state["config"] = cfg.to_dict()
            torch.save(state, partial / "last.pt")
            atomic_write_text(partial / "config.json", cfg.to_json())
        partial.rename(run)
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--name", default="small", help="run name (a folder under WORKDIR/runs)")
    parser.add_argument("--minutes", type=float, help="training time budget")
    parser.add_argument("--steps", type=int, help="training step budget")
    parser.add_argument("--continue-from", metavar="RUN", help="start from a copy of WORKDIR/runs/RUN "
                        "(its configuration, where --set may change only what `avsep train --resume` "
                        "takes: the sparsity options) and train it to --steps")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--per-label", type=int, default=DEFAULT_PER_LABEL,
                        help=f"training-pool solo videos per instrument (default: the quickstart's {DEFAULT_PER_LABEL})")
    parser.add_argument("--train-seconds", type=float, default=8.0, help="length of the training-pool videos")
    parser.add_argument("--labels", nargs="+", help="instruments (default: the quickstart's five); a workdir "
                        "keeps the instruments it was first made with")
    parser.add_argument("--heldout-per-label", type=int, default=6)
    parser.add_argument("--duets", type=int, default=48,
                        help="held-out duets to score clicks and pointing on (misses come a duet at a time: "
                        "12 duets leave pointing uncertain by about +-15 points)")
    parser.add_argument("--heldout-backgrounds", metavar="DIR", type=Path, help="a folder of pictures behind the players of "
                        "the held-out scenes instead of the held-out wallpaper packages (a workdir keeps its own)")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2, help="processes for generation, and data loaders in training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default="fp32",
                        help="autocast of the training step (RunSettings.precision; auto: the quickstart's default)")
    parser.add_argument("--radius", type=int, help="score clicks with this point neighbourhood in cells "
                        "(default: the library's, 1); rescoring a trained run does not train it again")
    parser.add_argument("--map-grid", choices=["fine", "coarse"], default="fine",  # small: fine by default too
                        help="grid of the energy maps that pointing scores (rescoring does not train again)")
    parser.add_argument("--map-weighting", choices=MAP_WEIGHTINGS, default=MAP_WEIGHTINGS[0],
                        help="how the energy maps that pointing scores weigh the mixture's bins (power: as "
                        "before 2026-12-06; rescoring does not train again)")
    parser.add_argument("--score", choices=("best", "last"), default="best",
                        help="the checkpoint to score: best.pt (best validation SDR; within the sparsity stage "
                        "once a delayed one has begun) or last.pt")
    parser.add_argument("--pool", choices=QUERY_POOLS,
                        help="how the cells of a click (and, but for mean, of a solo video) combine "
                        "(default: the model's configuration; rescoring does not train again)")
    args = parser.parse_args()
    if args.continue_from and (args.steps is None or args.continue_from == args.name):
        parser.error("--continue-from needs --steps and a new --name")
    torch.set_num_threads(2)
    cfg = Config.preset("small").with_overrides(args.overrides)  # a bad --set fails before any generation
    check_heldout_backgrounds(args.workdir, args.heldout_backgrounds, "--heldout-backgrounds")

    demo = prepare_demo(args.workdir, args.labels, per_label=args.per_label, heldout_per_label=args.heldout_per_label,
                        duets=args.duets, seed=args.seed, workers=args.workers, verbose=False,
                        train_seconds=args.train_seconds, heldout_backgrounds=args.heldout_backgrounds)
    run = args.workdir / "runs" / args.name
    if args.continue_from:
        cfg = copy_run(args.workdir / "runs" / args.continue_from, run, args.overrides)
    if (run / "last.pt").exists() and args.steps:
        trained = Config.from_dict(torch.load(run / "last.pt", weights_only=True)["config"])
        changed = config_changes(trained, cfg)
        if changed:  # a rescore without --steps may use a run of any configuration; training on may not
            raise SystemExit(f"{run} was trained with {', '.join(changed)}: pass its --set values, or another --name")
        train_to(trained, demo.data, run, args.steps, args.minutes, args.workers,  # no-op when already there
                 precision=args.precision)
    elif not (run / "last.pt").exists():  # a run that exists is only rescored (and never trained over)
        cfg = cfg.replace(epochs=100_000)  # the budget, not the epochs, ends the run
        began = time.monotonic()
        settings = RunSettings(workers=args.workers, max_minutes=args.minutes, max_steps=args.steps, progress=True,
                               precision=args.precision)
        state = Trainer(cfg, demo.data / "train.csv", demo.data / "val.csv", run, settings).fit()
        print(f"trained {state.step} steps in {state.seconds / 60:.1f} min of training "
              f"({(time.monotonic() - began) / 60:.1f} min wall)")
    if not (run / f"{args.score}.pt").is_file():
        raise SystemExit(f"{run} has no {args.score}.pt to score (pass --steps to train it on)")
    query = {"map_grid": args.map_grid, "map_weighting": args.map_weighting,
             **({} if args.radius is None else {"radius": args.radius}),
             **({} if args.pool is None else {"pool": args.pool})}
    report = generalization_report(run / f"{args.score}.pt", demo.data / "val.csv", demo.heldout_index, demo.duets,
                                   pairs=args.pairs, **query)
    last = torch.load(run / "last.pt", weights_only=True)
    state = last["train_state"]
    # What the run was trained with (for a continued run, its source's options too), and this invocation's precision.
    trained_with = [k for k in Config.from_dict(last["config"]).differences(Config.preset("small")) if k != "epochs"]
    report["run"] = {"name": args.name, "overrides": args.overrides, "differs_from_preset": trained_with,
                     "precision_of_this_invocation": args.precision, "steps": state["step"], "radius": args.radius,
                     "map_grid": args.map_grid, "map_weighting": args.map_weighting, "pool": args.pool or cfg.pool,
                     "train_minutes": state["seconds"] / 60, "best_step": state["best_step"],
                     "scored": f"{args.score}.pt", "sparsity_from": state.get("sparsity_from", -1)}
    for key in ("in_distribution", "held_out"):
        report[key].pop("items", None)
    suffix = ("" if args.score == "best" else f"_{args.score}") \
        + ("" if args.radius is None else f"_radius{args.radius}") \
        + ("" if args.map_grid == "fine" else f"_{args.map_grid}") + ("" if args.pool is None else f"_pool{args.pool}") \
        + ("" if args.map_weighting == "loss" else f"_{args.map_weighting}")
    atomic_write_text(run / f"generalization{suffix}.json", json.dumps(json_safe(report), indent=2))
    print(f"\n{args.name}: {state['step']} steps, {state['seconds'] / 60:.1f} min of training, "
          f"best.pt from step {state['best_step']}; scored {args.score}.pt; overrides: {' '.join(args.overrides) or 'none'}")
    print(format_report(report))


if __name__ == "__main__":
    try:
        main()
    except AvsepError as error:  # a bad --set, a missing folder: one line, no traceback
        raise SystemExit(f"bench_generalization: {error}") from None
