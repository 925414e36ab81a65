"""``avsep train``: train a Sound-of-Pixels model by mix-and-separate (see avsep.training)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from avsep.config import Config
from avsep.errors import AvsepError
from avsep.models.checkpoint import load_checkpoint
from avsep.training.trainer import Trainer
from avsep.utils import atomic_write_text, pick_device

log = logging.getLogger("avsep")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, help="folder from `avsep preprocess` (train.csv, val.csv)")
    parser.add_argument("--train-index", type=Path, help="training index file (instead of --data)")
    parser.add_argument("--val-index", type=Path, help="validation index file (instead of --data)")
    parser.add_argument("--out", type=Path, required=True, help="run folder for checkpoints and logs")
    parser.add_argument("--preset", default="small", help="configuration preset: sop or small (default: small)")
    parser.add_argument("--config", type=Path, help="a config.json to start from instead of a preset")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override any configuration key (repeatable), e.g. --set unet_levels=6")
    parser.add_argument("--num-mix", type=int, help="sources per mixture, 2 to 4")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--workers", type=int, help="data-loader processes")
    parser.add_argument("--max-minutes", type=float,
                        help="stop after this many minutes of training (validation and checkpoints not counted)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--random-init", action="store_true",
                        help="train the ResNet from scratch if ImageNet weights are not available")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: cuda if available)")


def build_config(args: argparse.Namespace) -> Config:
    cfg = Config.load(args.config) if args.config else Config.preset(args.preset)
    cli = {"num_mix": args.num_mix, "batch_size": args.batch_size, "epochs": args.epochs, "workers": args.workers}
    return cfg.with_overrides([f"{k}={v}" for k, v in cli.items() if v is not None] + list(args.overrides))


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
        cfg = Config.from_dict(resume_state["config"])
        if args.overrides:
            log.warning("--set is ignored with --resume: the run keeps the configuration in %s", last)
    elif last.is_file():
        raise AvsepError(f"--out {run_dir} already holds a run (last.pt); pass --resume to continue it")
    else:
        cfg = build_config(args)
    train_index, val_index = index_paths(args)
    device = pick_device(args.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.json", cfg.to_json())
    trainer = Trainer(cfg, train_index, val_index, run_dir, device, args.random_init, resume_state)
    start = trainer.state.step
    state = trainer.fit(args.max_minutes)
    print(f"trained steps {start}..{state.step} ({state.seconds / 60:.1f} min in total); "
          f"best validation SDR {state.best_sdr:.2f} dB")
    print(f"checkpoints: {run_dir / 'last.pt'}  {run_dir / 'best.pt'}")
    return 0
