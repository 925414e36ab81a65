"""``avsep train``: train a Sound-of-Pixels model by mix-and-separate (see avsep.training)."""
from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from avsep.config import Config, RunSettings
from avsep.errors import AvsepError
from avsep.models.checkpoint import load_checkpoint
from avsep.training.trainer import Trainer
from avsep.utils import atomic_write_text

log = logging.getLogger("avsep")
# Keys that may change when a run is resumed: they set how long it runs, not what it learns.
RESUMABLE_CHANGES = {"epochs"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="folder from `avsep preprocess` (train.csv, val.csv)")
    parser.add_argument("--train-index", type=Path, help="training index file (instead of --data)")
    parser.add_argument("--val-index", type=Path, help="validation index file (instead of --data)")
    parser.add_argument("--out", type=Path, required=True, help="run folder for checkpoints and logs")
    parser.add_argument("--preset", help="configuration preset: sop or small (default: small)")
    parser.add_argument("--config", type=Path, help="a config.json to start from instead of a preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any configuration key (repeatable), e.g. --set unet_levels=6")
    parser.add_argument("--num-mix", type=int, help="sources per mixture, 2 to 4")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--workers", type=int, default=1, help="data-loader processes (default: 1)")
    parser.add_argument("--max-steps", type=int, help="stop at this step (default: the end of the epochs)")
    parser.add_argument("--max-minutes", type=float,
                        help="an outer bound on this invocation's training time (validation not counted)")
    parser.add_argument("--save-minutes", type=float, default=5.0,
                        help="also write last.pt this often, for crash safety (default: 5)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--random-init", action="store_true",
                        help="train the ResNet from scratch if ImageNet weights are not available")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: cuda if available)")


def explicit_settings(args: argparse.Namespace) -> list[str]:
    """The configuration the command line sets explicitly, as KEY=VALUE strings."""
    flags = {"num_mix": args.num_mix, "batch_size": args.batch_size, "epochs": args.epochs}
    return [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides)


def build_config(args: argparse.Namespace) -> Config:
    cfg = Config.load(args.config) if args.config else Config.preset(args.preset or "small")
    return cfg.with_overrides(explicit_settings(args))


def resumed_config(args: argparse.Namespace, saved: Config, last: Path) -> Config:
    """The checkpoint's configuration; flags that conflict with it are named and ignored
    (except ``epochs``, which may be changed to extend or shorten a run)."""
    if args.preset or args.config:
        log.warning("--resume: ignoring %s; the run keeps the configuration in %s",
                    "--preset" if args.preset else "--config", last)
    asked = saved.with_overrides(explicit_settings(args))
    conflicts = [key for key in asked.differences(saved) if key not in RESUMABLE_CHANGES]
    if conflicts:
        saved_values = saved.to_dict()
        log.warning("--resume: ignoring %s from the command line; the run keeps %s from %s",
                    ", ".join(f"{k}={asked.to_dict()[k]}" for k in conflicts),
                    ", ".join(f"{k}={saved_values[k]}" for k in conflicts), last)
    return saved.replace(epochs=asked.epochs) if asked.epochs != saved.epochs else saved


def index_paths(args: argparse.Namespace) -> tuple[Path, Path | None]:
    if args.train_index:
        return args.train_index, args.val_index
    if not args.data:
        raise AvsepError("give --data FOLDER (from `avsep preprocess`) or --train-index FILE")
    if not (args.data / "train.csv").is_file():
        raise AvsepError(f"--data {args.data}: no train.csv there; run `avsep preprocess SRC {args.data}` first")
    val = args.data / "val.csv"
    return args.data / "train.csv", val if val.is_file() else None


def run(args: argparse.Namespace) -> int:
    run_dir: Path = args.out
    last = run_dir / "last.pt"
    resume_state = None
    if args.resume and last.is_file():
        resume_state = load_checkpoint(last)
        cfg = resumed_config(args, Config.from_dict(resume_state["config"]), last)
    elif last.is_file():
        raise AvsepError(f"--out {run_dir} already holds a run (last.pt); pass --resume to continue it")
    else:
        cfg = build_config(args)
    train_index, val_index = index_paths(args)
    settings = RunSettings(workers=args.workers, device=args.device, max_minutes=args.max_minutes,
                           max_steps=args.max_steps, save_minutes=args.save_minutes)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.json", cfg.to_json())
    trainer = Trainer(cfg, train_index, val_index, run_dir, settings, args.random_init, resume_state)
    start = trainer.state.step
    state = trainer.fit()
    best = f"{state.best_sdr:.2f} dB at step {state.best_step}" if math.isfinite(state.best_sdr) else "none"
    print(f"trained steps {start}..{state.step} ({state.seconds / 60:.1f} min in total); best validation SDR {best}")
    print(f"checkpoints: {run_dir / 'last.pt'}  {run_dir / 'best.pt'}")
    return 0
