"""Train a Sound-of-Pixels model by mix-and-separate on a folder made by ``avsep preprocess``.

The run folder holds ``config.json``, ``last.pt`` (saved every ``checkpoint_minutes`` and at the
end), ``best.pt`` (best validation SDR), ``log.csv``, ``curves.png`` (loss and validation SDR)
and, if TensorBoard is installed, ``tb/``.
``--resume`` continues from ``last.pt``, also after a kill -9 at any moment.
"""
from __future__ import annotations

import argparse
import csv
import io
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from .checkpoint import load_checkpoint, save_checkpoint
from .config import Config
from .data import MixtureDataset, check_rows, fixed_mixtures, make_loader
from .errors import AvsepError
from .evaluate import score_loader
from .images import save_png
from .index import read_index
from .masks import loss_weight, mask_loss, target_masks
from .model import SoundOfPixels
from .plots import training_curves
from .spectrogram import mixture_features
from .utils import atomic_write_text, pick_device

log = logging.getLogger("avsep")
LOG_FIELDS = ["step", "epoch", "seconds", "loss", "samples_per_s", "val_sdr"]


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


@dataclass
class TrainState:
    """What a checkpoint must remember to resume exactly where training stopped."""
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    seconds: float = 0.0
    best_sdr: float = -math.inf

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def make_optimizer(model: SoundOfPixels, cfg: Config) -> torch.optim.Optimizer:
    groups = model.parameter_groups()
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, betas=(cfg.momentum, 0.999), weight_decay=cfg.weight_decay)
    return torch.optim.SGD(groups, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def train_step(model: SoundOfPixels, batch: dict, cfg: Config, optimizer: torch.optim.Optimizer,
               device: torch.device) -> float:
    """One mix-and-separate step; returns the loss."""
    mix, sources, frames = (batch[k].to(device) for k in ("mix", "sources", "frames"))
    features = mixture_features(mix, cfg, sources)
    logits = model(features.log_mix_mag, frames)
    targets = target_masks(features.source_mags, features.mix_mag, cfg.mask_type)
    loss = mask_loss(logits, targets, cfg, loss_weight(features.mix_mag))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


class RunLog:
    """log.csv and, if installed, TensorBoard.

    On resume, rows logged after the checkpoint (and a line torn by a kill) are dropped, so
    the log matches the model that training continues from.
    """

    def __init__(self, run_dir: Path, step: int):
        self.path = run_dir / "log.csv"
        self.rows = [row for row in self._read() if row["step"] <= step]
        text = io.StringIO()
        writer = csv.DictWriter(text, LOG_FIELDS)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, text.getvalue())
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=step + 1)
        except Exception:  # TensorBoard is optional
            pass

    def _read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        rows = []
        with open(self.path, newline="") as f:
            for row in csv.DictReader(f):
                if None in row.values() or not (row.get("step") or "").isdigit():
                    continue  # a torn line
                row["step"] = int(row["step"])
                rows.append(row)
        return rows

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, LOG_FIELDS).writerow(row)
        if self.tb:
            for key in ("loss", "samples_per_s", "val_sdr"):
                if row.get(key) not in (None, ""):
                    self.tb.add_scalar(key, float(row[key]), row["step"])

    def plot(self) -> None:
        """Write curves.png: the loss and the validation SDR against the step."""
        validated = [r for r in self.rows if r.get("val_sdr") not in (None, "")]
        image = training_curves([r["step"] for r in self.rows], [float(r["loss"]) for r in self.rows],
                                [r["step"] for r in validated], [float(r["val_sdr"]) for r in validated])
        save_png(image, self.path.with_name("curves.png"))


class ProgressBar:
    """Steps out of the run's total, or, when the run is bounded by time, seconds out of the budget."""

    def __init__(self, total_steps: int, step: int, max_minutes: float | None):
        self.timed = bool(max_minutes)
        total = round(max_minutes * 60) if self.timed else total_steps
        self.bar = tqdm(total=total, initial=0 if self.timed else step, desc="train", dynamic_ncols=True,
                        unit="s" if self.timed else "step", bar_format=None)

    def update(self, step: int, seconds: float, **postfix: Any) -> None:
        """``seconds``: training time spent in this run so far."""
        done = min(self.bar.total, round(seconds)) if self.timed else step
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix(step=step, **postfix)

    def close(self) -> None:
        self.bar.close()


class Trainer:
    """Owns the model, optimiser, data and run folder of one training run."""

    def __init__(self, cfg: Config, train_index: Path, val_index: Path | None, run_dir: Path,
                 device: torch.device, random_init: bool = False, resume_state: dict | None = None):
        self.cfg, self.run_dir, self.device = cfg, run_dir, device
        torch.manual_seed(cfg.seed)
        self.model = SoundOfPixels(cfg).to(device)
        self.optimizer = make_optimizer(self.model, cfg)
        self.state = TrainState()
        if resume_state is not None:
            self.model.load_state_dict(resume_state["model"])
            self.optimizer.load_state_dict(resume_state["optimizer"])
            self.state = TrainState(**resume_state["train_state"])
        elif cfg.imagenet_pretrained:
            self.model.frame_net.load_imagenet(allow_random=random_init)
        self.train_set = MixtureDataset(check_rows(read_index(train_index), train_index), cfg, train=True,
                                        seed=cfg.seed)
        self.val_loader = None
        if val_index is not None and cfg.val_pairs > 0:
            val_rows = check_rows(read_index(val_index), val_index)
            if len({r.label for r in val_rows}) >= cfg.num_mix:
                groups = fixed_mixtures(val_rows, cfg.num_mix, cfg.val_pairs, cfg.seed)
                val_set = MixtureDataset(val_rows, cfg, train=False, mixtures=groups)
                self.val_loader = make_loader(val_set, cfg.batch_size, 0)
            else:
                log.warning("%s has fewer than %d labels: no validation, best.pt follows last.pt", val_index, cfg.num_mix)
        self.steps_per_epoch = max(1, cfg.epoch_size // cfg.batch_size)

    def validate(self) -> float:
        """Median SDR on the fixed validation mixtures (nan without a validation set)."""
        if self.val_loader is None:
            return float("nan")
        self.model.eval()
        scores = score_loader(self.model, self.val_loader, self.cfg, self.device)
        self.model.train()
        return scores["model"]["SDR"]["median"]

    def checkpoint(self) -> float:
        """Validate, then save last.pt, and best.pt if validation SDR improved; returns the SDR."""
        val_sdr = self.validate()
        improved = math.isnan(val_sdr) or val_sdr > self.state.best_sdr
        if improved and not math.isnan(val_sdr):
            self.state.best_sdr = val_sdr
        extra = {"optimizer": self.optimizer.state_dict(), "train_state": self.state.to_dict(), "val_sdr": val_sdr}
        save_checkpoint(self.run_dir / "last.pt", self.model, self.cfg, **extra)
        if improved:  # without validation, best.pt simply follows last.pt
            save_checkpoint(self.run_dir / "best.pt", self.model, self.cfg, **extra)
        return val_sdr

    def fit(self, max_minutes: float | None = None) -> TrainState:
        """Train until ``cfg.epochs`` are done or ``max_minutes`` have passed; checkpoint on the way."""
        cfg, state = self.cfg, self.state
        run_log = RunLog(self.run_dir, state.step)
        # The budget counts training time, as state.seconds does (validation and checkpoints
        # excluded), so a resumed or repeated run sees the same clock.
        start_seconds = state.seconds
        deadline = start_seconds + max_minutes * 60 if max_minutes else math.inf
        last_save = time.monotonic()
        bar = ProgressBar(cfg.epochs * self.steps_per_epoch, state.step, max_minutes)
        self.model.train()
        stopped = False
        while state.epoch < cfg.epochs and not stopped:
            self.train_set.epoch = state.epoch
            first = state.batch_in_epoch * cfg.batch_size
            loader = make_loader(self.train_set, cfg.batch_size, cfg.workers,
                                 range(first, self.steps_per_epoch * cfg.batch_size), drop_last=True)
            tick = time.monotonic()
            for batch in loader:
                loss = train_step(self.model, batch, cfg, self.optimizer, self.device)
                now = time.monotonic()
                speed = cfg.batch_size / max(now - tick, 1e-9)
                state.seconds += now - tick
                state.step += 1
                state.batch_in_epoch += 1
                if state.batch_in_epoch == self.steps_per_epoch:
                    state.epoch, state.batch_in_epoch = state.epoch + 1, 0
                bar.update(state.step, state.seconds - start_seconds, loss=f"{loss:.4f}", samples_s=f"{speed:.1f}",
                           epoch=state.epoch)
                row = {"step": state.step, "epoch": state.epoch, "seconds": round(state.seconds, 2),
                       "loss": round(loss, 6), "samples_per_s": round(speed, 3), "val_sdr": ""}
                stopped = state.seconds >= deadline
                finished = state.epoch >= cfg.epochs
                if stopped or finished or now - last_save >= cfg.checkpoint_minutes * 60:
                    row["val_sdr"] = round(self.checkpoint(), 3)
                    last_save = time.monotonic()
                run_log.write(row)
                if row["val_sdr"] != "":
                    run_log.plot()
                tick = time.monotonic()  # validation and checkpointing are not training time
                if stopped or finished:
                    break
        bar.close()
        return state


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
