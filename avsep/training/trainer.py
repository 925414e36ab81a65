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

from avsep.models.checkpoint import load_checkpoint, save_checkpoint
from avsep.config import Config
from avsep.data.mixtures import MixtureDataset, check_rows, fixed_mixtures, make_loader
from avsep.errors import AvsepError
from avsep.evaluation.evaluate import score_loader
from avsep.viz.images import save_png
from avsep.data.index import read_index
from avsep.dsp.masks import loss_weight, mask_loss, target_masks
from avsep.models.sop import SoundOfPixels
from avsep.viz.plots import training_curves
from avsep.dsp.spectrogram import mixture_features
from avsep.utils import atomic_write_text, pick_device

log = logging.getLogger("avsep")
LOG_FIELDS = ["step", "epoch", "seconds", "loss", "samples_per_s", "val_sdr"]


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
