"""``avsep train``: train a Sound-of-Pixels model by mix-and-separate (see avsep.training).

Under ``torchrun --nproc_per_node=G -m avsep train ...`` every process runs this command and
they train one model with DistributedDataParallel (docs/scaling.md).
"""
from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path

from avsep.config import Config, RunSettings
from avsep.cli import checks
from avsep.errors import AvsepError
from avsep.models.checkpoint import load_checkpoint
from avsep.data.shards import is_shard_manifest
from avsep.training import distributed
from avsep.training.engine import PRECISION_CHOICES
from avsep.training.trainer import Trainer
from avsep.utils import atomic_write_text, check_output_folder

log = logging.getLogger("avsep")
# Keys that may change when a run is resumed: how long it runs, a cooldown of the learning rates
# at its end, and the push towards silence of the per-pixel loss, which a later stage of a run may
# switch on (docs/training.md, "Sparsity after take-off": on models that already separated, it
# raised pointing). None changes what a checkpoint holds, so the run goes on from its own
# weights and optimizer.
RESUMABLE_CHANGES = {"epochs", "lr_cooldown", "pixel_sparsity", "sparsity_gate_db", "sparsity_start"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path,
                        help="folder from `avsep preprocess` (train.csv, val.csv) or from `avsep shard` (train.json)")
    parser.add_argument("--shards", type=Path, help="folder of tar shards from `avsep shard` (instead of --data)")
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
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: cuda if available; "
                        "under torchrun each process takes cuda:LOCAL_RANK)")
    speed = parser.add_argument_group("speed (machine settings, not saved in the configuration)")
    speed.add_argument("--precision", default="fp32", choices=PRECISION_CHOICES,
                       help="autocast precision of the training step (fp16 uses a gradient scaler; auto: bf16 on "
                       "a CPU with native bfloat16, else fp32; default: fp32)")
    speed.add_argument("--compile", action="store_true", help="torch.compile the training step (CUDA)")
    speed.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm across processes (CUDA, torchrun)")
    speed.add_argument("--dist-timeout", type=float, default=30.0, metavar="MINUTES",
                       help="fail the job when a process waits this long for the others (default: 30)")
    speed.add_argument("--shuffle-buffer", type=int, default=64, metavar="VIDEOS",
                       help="videos each loader stream keeps to mix from, with --shards (default: 64)")


def explicit_settings(args: argparse.Namespace) -> list[str]:
    """The configuration the command line sets explicitly, as KEY=VALUE strings."""
    flags = {"num_mix": args.num_mix, "batch_size": args.batch_size, "epochs": args.epochs}
    return [f"{k}={v}" for k, v in flags.items() if v is not None] + list(args.overrides)


def build_config(args: argparse.Namespace) -> Config:
    cfg = Config.load(args.config) if args.config else Config.preset(args.preset or "small")
    return cfg.with_overrides(explicit_settings(args))


def resumed_config(args: argparse.Namespace, saved: Config, last: Path) -> Config:
    """The checkpoint's configuration; flags that conflict with it are named and ignored, except
    :data:`RESUMABLE_CHANGES` (``epochs`` to extend or shorten a run, ``lr_cooldown`` and the sparsity options),
    which are taken and named."""
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
    taken = {key: getattr(asked, key) for key in asked.differences(saved) if key in RESUMABLE_CHANGES}
    changed = sorted(set(taken) - {"epochs"})
    if changed:
        log.warning("--resume: continuing with %s",
                    ", ".join(f"{k}={taken[k]} (was {getattr(saved, k)})" for k in changed))
    return saved.replace(**taken) if taken else saved


def index_paths(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """The training and validation index files, or shard manifests."""
    if args.train_index:
        return args.train_index, args.val_index
    if args.shards and args.data:
        raise AvsepError("give --data or --shards, not both")
    folder = args.shards or args.data
    if not folder:
        raise AvsepError("give --data FOLDER (from `avsep preprocess` or `avsep shard`), --shards FOLDER "
                         "or --train-index FILE")
    if args.shards or is_shard_manifest(folder / "train.json"):
        if not (folder / "train.json").is_file():
            raise AvsepError(f"--shards {folder}: no train.json there; run `avsep shard DATA_DIR {folder}` first")
        val = folder / "val.json"
        return folder / "train.json", val if val.is_file() else None
    if not (folder / "train.csv").is_file():
        raise AvsepError(f"--data {folder}: no train.csv there; run `avsep preprocess SRC {folder}` first")
    val = folder / "val.csv"
    return folder / "train.csv", val if val.is_file() else None


def run(args: argparse.Namespace) -> int:
    checks.at_least(args, workers=0, max_steps=1, batch_size=1, epochs=1, shuffle_buffer=1)
    checks.positive(args, "max_minutes", "save_minutes", "dist_timeout")
    check_output_folder(args.out)
    settings = RunSettings(workers=args.workers, device=args.device, max_minutes=args.max_minutes,
                           max_steps=args.max_steps, save_minutes=args.save_minutes, precision=args.precision,
                           compile=args.compile, sync_bn=args.sync_bn, dist_timeout_minutes=args.dist_timeout,
                           shuffle_buffer=args.shuffle_buffer)
    # Under torchrun: join the process group (NCCL on GPUs, gloo on CPUs); otherwise one process.
    ctx = distributed.setup(settings.device, settings.dist_timeout_minutes)
    try:
        return _train(args, settings, ctx)
    except RuntimeError as err:
        if distributed.is_collective_failure(ctx, err):  # one line, not a traceback per process
            raise AvsepError(distributed.failure_message(ctx, err)) from None
        raise
    finally:
        distributed.teardown(ctx)


def _train(args: argparse.Namespace, settings: RunSettings, ctx: distributed.DistContext) -> int:
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
    ctx.local_batch(cfg.batch_size)  # a batch that does not divide among the processes fails here, on every rank
    settings.progress = settings.progress and ctx.is_main
    # Built before the run folder is made, so that an unreadable index leaves no folder behind.
    trainer = Trainer(cfg, train_index, val_index, run_dir, settings, args.random_init, resume_state, dist=ctx)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.json", cfg.to_json())
    start = trainer.state.step
    state = trainer.fit()
    ctx.barrier()  # rank 0 has written its last checkpoint before any process leaves
    if ctx.is_main:
        best = f"{state.best_sdr:.2f} dB at step {state.best_step}" if math.isfinite(state.best_sdr) else "none"
        processes = f" on {ctx.world} processes" if ctx.distributed else ""
        print(f"trained steps {start}..{state.step}{processes} ({state.seconds / 60:.1f} min in total); "
              f"best validation SDR {best}")
        print(f"checkpoints: {run_dir / 'last.pt'}  {run_dir / 'best.pt'}")
    return 0
