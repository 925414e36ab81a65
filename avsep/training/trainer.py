"""Train a Sound-of-Pixels model by mix-and-separate on a folder made by ``avsep preprocess``.

The run folder holds ``config.json``, ``last.pt``, ``best.pt`` (best validation median SDR),
``log.csv``, ``curves.png`` (loss and validation SDR) and, if TensorBoard is installed, ``tb/``.

Every decision is taken by steps, so it does not depend on the speed of the machine: the
learning rate follows the epoch (``lr_milestones``), validation, ``last.pt`` and ``best.pt``
happen every ``val_every`` steps and at the end of the run. ``RunSettings.max_minutes`` stays as
an outer bound on time. A run killed at any moment resumes from ``last.pt`` to the same
weights, bit for bit on a CPU, as a run that was never interrupted.

Under torchrun the same loop runs in every process (:mod:`avsep.training.distributed`): the
model trains inside DistributedDataParallel, each rank takes its share of every global batch
(``batch_size`` is the global batch), validation is split among ranks, every rank takes the same
decisions, and only rank 0 writes files. The data may be folders or tar shards
(:mod:`avsep.training.data`).
"""
from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from avsep.config import COOLDOWN_FLOOR, Config, RunSettings
from avsep.dsp.inputs import mixture_features
from avsep.dsp.masks import contrast_loss, loss_weight, mask_loss, pixel_loss, target_masks
from avsep.models.checkpoint import cpu_state, load_checkpoint, save_checkpoint
from avsep.models.sop import SoundOfPixels
from avsep.training.averaging import WeightAverage
from avsep.training.data import open_data
from avsep.training.distributed import DistContext
from avsep.training.engine import (Precision, TrainingObjective, optimizer_step, plain_state_dict,
                                   resolve_precision, use_sync_bn, wrap_objective)
from avsep.training.runlog import ProgressBar, RunLog
from avsep.training.validation import validate_split
from avsep.utils import clean_partials, pick_device

log = logging.getLogger("avsep")


@dataclass
class TrainState:
    """What a checkpoint must remember to resume exactly where training stopped."""
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    seconds: float = 0.0
    best_sdr: float = -math.inf
    best_step: int = -1
    # First step trained with the per-pixel sparsity once its gate opened (cfg.sparsity_gate_db);
    # -1: not opened (or no gate, where the sparsity applies from the first step).
    sparsity_from: int = -1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def make_optimizer(model: SoundOfPixels, cfg: Config) -> torch.optim.Optimizer:
    groups = model.parameter_groups()
    for group in groups:
        group["base_lr"] = group["lr"]  # the schedule scales this; kept in the optimizer's state
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, betas=(cfg.momentum, 0.999), weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, betas=(cfg.momentum, 0.999), weight_decay=cfg.weight_decay)
    return torch.optim.SGD(groups, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def lr_factor(cfg: Config, epoch: int, step: int) -> float:
    """The schedule for the step after ``step`` (of epoch ``epoch``): ``lr_gamma`` to the power of
    the milestones passed, times the cooldown's linear fall to ``COOLDOWN_FLOOR`` (``lr_cooldown``)."""
    factor = cfg.lr_gamma ** sum(epoch >= milestone for milestone in cfg.lr_milestones)
    if cfg.lr_cooldown:
        first, last = cfg.lr_cooldown
        progress = min(max((step - first) / (last - first), 0.0), 1.0)
        factor *= 1.0 - (1.0 - COOLDOWN_FLOOR) * progress
    return factor


def set_learning_rates(optimizer: torch.optim.Optimizer, cfg: Config, epoch: int, step: int) -> float:
    factor = lr_factor(cfg, epoch, step)
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
    return factor


def training_loss(model: SoundOfPixels, batch: dict, cfg: Config, device: torch.device,
                  sparsity: float | None = None, gather: Callable[[torch.Tensor], torch.Tensor] | None = None,
                  ) -> torch.Tensor:
    """The pooled mask loss of every source, plus the per-pixel loss when ``pixel_loss`` > 0
    (with the sparsity weight ``sparsity``, by default a first step's: :func:`sparsity_weight`)
    and the contrastive loss when ``av_contrast`` > 0 (across processes through ``gather``, if
    given: ``DistContext.gather_rows``)."""
    mix, sources, frames, owner = (batch[k].to(device) for k in ("mix", "sources", "frames", "owner"))
    features = mixture_features(mix, cfg, sources)
    sound = model.sound_features(features.log_mix_mag)
    grids = model.view_grids(frames)
    targets = target_masks(features.source_mags, features.mix_mag, cfg.mask_type)
    weight = loss_weight(features.mix_mag)
    vectors = model.pooled_vectors(grids, owner)
    loss = mask_loss(model.pooled_logits(sound, grids, vectors=vectors), targets, cfg, weight)
    if cfg.av_contrast:
        # A batch built by hand may carry no labels: then every other source is a negative. (Under
        # DDP every rank's batches come from one dataset, so all carry labels or none, and every
        # rank makes the same gathers.)
        labels = batch["labels"].to(device) if "labels" in batch else None
        loss = loss + cfg.av_contrast * contrast_loss(vectors, sound, targets, weight, model.synthesizer.scale,
                                                      labels=labels, gather=gather)
    if cfg.pixel_loss:
        # The synthesizer is linear in the audio features, so pooling them pools the logits: the
        # per-pixel loss then costs pixel_loss_pool**2 times less, at a coarser time-frequency grid.
        k = cfg.pixel_loss_pool
        coarse = [F.avg_pool2d(x, k) for x in (sound, targets, weight)]
        sparsity = sparsity_weight(cfg, TrainState()) if sparsity is None else sparsity
        loss = loss + cfg.pixel_loss * pixel_loss(model.cell_logits(coarse[0], grids), owner, coarse[1], cfg, coarse[2],
                                                  sparsity=sparsity)
    return loss


def sparsity_weight(cfg: Config, state: TrainState) -> float:
    """The per-pixel sparsity's weight for the step after ``state.step``: ``cfg.pixel_sparsity``
    once ``cfg.sparsity_start`` steps are done and the gate (``cfg.sparsity_gate_db``, if any) has
    opened; else 0."""
    if state.step < cfg.sparsity_start:
        return 0.0
    return cfg.pixel_sparsity if cfg.sparsity_gate_db <= 0 or state.sparsity_from >= 0 else 0.0


def sparsity_stage_start(cfg: Config, state: TrainState) -> int | None:
    """The first step trained with the sparsity push where ``sparsity_start`` or a gate delayed it
    (a second stage of the run, with its own objective); None where it is not delayed or has not
    started yet."""
    if not cfg.pixel_sparsity or not (cfg.sparsity_start or cfg.sparsity_gate_db):
        return None
    if cfg.sparsity_gate_db and state.sparsity_from < 0:
        return None
    first = max(cfg.sparsity_start + 1, state.sparsity_from if cfg.sparsity_gate_db else 0)
    return first if state.step >= first else None


def train_step(model: SoundOfPixels, batch: dict, cfg: Config, optimizer: torch.optim.Optimizer,
               device: torch.device) -> float:
    """One mix-and-separate step; returns the loss."""
    loss = training_loss(model, batch, cfg, device)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def reconcile_best(run_dir: Path, state: dict) -> None:
    """After a kill between writing last.pt and best.pt, best.pt may be older than the best step
    that last.pt records; that step *is* last.pt's, so copy it over."""
    best_step = state["train_state"].get("best_step", -1)
    if best_step != state["train_state"]["step"]:
        return
    best = run_dir / "best.pt"
    if not best.is_file() or load_checkpoint(best)["train_state"]["step"] != best_step:
        log.info("best.pt was behind last.pt's best step %d (an interrupted save): restoring it", best_step)
        tmp = best.with_name(".best.pt.part")
        shutil.copyfile(run_dir / "last.pt", tmp)
        tmp.replace(best)


class Trainer:
    """Owns the model, optimiser, data and run folder of one training run (one rank's share of it
    under torchrun: pass the :class:`DistContext` from :func:`avsep.training.distributed.setup`).

    ``train_index`` / ``val_index`` are index files, or shard manifests (``SHARD_DIR/train.json``).
    """

    def __init__(self, cfg: Config, train_index: Path, val_index: Path | None, run_dir: Path,
                 settings: RunSettings | None = None, random_init: bool = False, resume_state: dict | None = None,
                 dist: DistContext | None = None):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.settings = settings or RunSettings()
        self.dist = dist or DistContext(device=pick_device(self.settings.device))
        self.device = self.dist.device
        torch.manual_seed(cfg.seed)
        self.model = use_sync_bn(SoundOfPixels(cfg).to(self.device), self.dist, self.settings.sync_bn)
        self.optimizer = make_optimizer(self.model, cfg)
        self.state = TrainState()
        self.data = open_data(cfg, train_index, val_index, self.dist, self.settings)
        self.manifest = self.data.manifest
        self.precision: Precision = resolve_precision(self.settings.precision, self.device)
        if resume_state is not None:
            # With weight averaging, "model" is the average and "training_model" the raw weights.
            self.model.load_state_dict(plain_state_dict(resume_state.get("training_model", resume_state["model"])))
            self.optimizer.load_state_dict(resume_state["optimizer"])
            self.state = TrainState(**resume_state["train_state"])
            if self.precision.scaler is not None and resume_state.get("grad_scaler"):
                self.precision.scaler.load_state_dict(resume_state["grad_scaler"])
            if self.dist.is_main:
                reconcile_best(self.run_dir, resume_state)
                clean_partials(self.run_dir)  # checkpoints a killed run was writing
        elif cfg.imagenet_pretrained and self.dist.is_main:
            # Other ranks get these weights from DDP's first broadcast (no concurrent downloads).
            self.model.frame_net.load_imagenet(allow_random=random_init)
        self.train_set = getattr(self.data, "train_set", None)
        if cfg.sparsity_gate_db > 0 and self.data.val_set is None:
            log.warning("sparsity_gate_db=%g needs validation to open, and this run has none: "
                        "the per-pixel sparsity will stay off", cfg.sparsity_gate_db)
        objective = TrainingObjective(
            self.model, lambda model, batch: training_loss(model, batch, cfg, self.device, sparsity_weight(cfg, self.state),
                                                           self.dist.gather_rows), self.device)
        self.step_module = wrap_objective(objective, self.dist, self.settings.compile)
        # After DDP's first broadcast, so that every rank averages rank 0's weights.
        self.average = WeightAverage(self.model, cfg.ema_decay) if cfg.ema_decay else None
        if self.average is not None and resume_state is not None and "training_model" in resume_state:
            self.average.model.load_state_dict(plain_state_dict(resume_state["model"]))

    @property
    def separating_model(self) -> torch.nn.Module:
        """The model that validation scores and checkpoints hold as ``model``: the weight
        average when ``ema_decay`` is set, else the trained model itself."""
        return self.model if self.average is None else self.average.model

    def validate(self) -> dict | None:
        """The evaluation summary on the fixed validation mixtures (None without a validation set).

        Split among ranks and gathered, so every rank returns the same summary.
        """
        if self.data.val_set is None:
            return None
        model = self.separating_model
        model.eval()
        summary = validate_split(model, self.data.val_set, self.cfg, self.dist)
        self.model.train()
        return summary

    def checkpoint(self, validate: bool = True) -> float | None:
        """Validate (if asked), write last.pt, then best.pt if validation improved; returns the SDR.

        A model whose validation estimates are all silent never becomes best.pt.
        """
        return self._save(validate, self.validate() if validate else None)

    def _save(self, validated: bool, summary: dict | None) -> float | None:
        """Take the best.pt decision on this step's validation ``summary`` (None without a
        validation set), write last.pt, then best.pt if it improved; returns the SDR."""
        val_sdr = summary["model"]["SDR"]["median"] if summary else None
        # A second stage (the delayed sparsity push) validates a little lower and is what the
        # recipe asks for: its checkpoints compete only with each other for best.pt.
        stage = sparsity_stage_start(self.cfg, self.state)
        best_is_older = stage is not None and self.state.best_step < stage
        improved = validated and (summary is None or (
            summary["silent_estimates"]["model"] < summary["sources_scored"]
            and (val_sdr > self.state.best_sdr or best_is_older)))
        if improved:
            self.state.best_step = self.state.step
            if summary is not None:
                self.state.best_sdr = val_sdr
        if not self.dist.is_main:  # every rank took the decisions above; rank 0 alone writes
            return val_sdr
        extra = {"optimizer": self.optimizer.state_dict(), "train_state": self.state.to_dict(),
                 "train_manifest": self.manifest, "val_sdr": val_sdr,
                 "val_silent": summary["silent_estimates"]["model"] if summary else None}
        if self.precision.scaler is not None:
            extra["grad_scaler"] = self.precision.scaler.state_dict()
        if self.average is not None:
            extra["training_model"] = cpu_state(self.model)
        # last.pt first: if a kill comes before best.pt is written, reconcile_best repairs it.
        save_checkpoint(self.run_dir / "last.pt", self.separating_model, self.cfg, **extra)
        if improved:  # without validation, best.pt simply follows last.pt
            save_checkpoint(self.run_dir / "best.pt", self.separating_model, self.cfg, **extra)
        return val_sdr

    def fit(self) -> TrainState:
        """Train to the end of the configured epochs, or ``max_steps``, or ``max_minutes``."""
        cfg, state, settings = self.cfg, self.state, self.settings
        end_step = cfg.total_steps if settings.max_steps is None else min(cfg.total_steps, settings.max_steps)
        main = self.dist.is_main
        run_log = RunLog(self.run_dir, state.step) if main else None
        # The time bound counts training time, as state.seconds does (validation and checkpoints
        # excluded), so a resumed or repeated run sees the same clock.
        deadline = state.seconds + settings.max_minutes * 60 if settings.max_minutes else math.inf
        bar = ProgressBar(end_step, state.step, settings.max_minutes, settings.progress and main)
        try:
            self._train_steps(end_step, deadline, run_log, bar)
        finally:  # on an error too, so that the error is not printed on the bar's line
            bar.close()
        return state

    def _train_steps(self, end_step: int, deadline: float, run_log: RunLog | None, bar: ProgressBar) -> None:
        """The loop of :meth:`fit`: train, log, validate and save until ``end_step`` or ``deadline``
        (seconds of training, as ``state.seconds`` counts them)."""
        cfg, state, settings = self.cfg, self.state, self.settings
        main, start_seconds = self.dist.is_main, state.seconds
        last_save, done = time.monotonic(), state.step >= end_step
        self.model.train()
        while not done:
            loader = self.data.loader(state.epoch, state.batch_in_epoch)
            tick = time.monotonic()
            for batch in loader:
                lr = set_learning_rates(self.optimizer, cfg, state.epoch, state.step)
                loss = optimizer_step(self.step_module, batch, self.optimizer, self.precision)
                now = time.monotonic()
                speed = cfg.batch_size / max(now - tick, 1e-9)  # global samples/s
                self._advance(now - tick)
                if self.average is not None:
                    self.average.update(self.model, state.step)
                # The mean loss, and rank 0's clock for the time-based decisions, on every rank.
                loss, state.seconds, save_now = self.dist.agree(
                    loss, state.seconds, now - last_save >= settings.save_minutes * 60)
                out_of_time = state.seconds >= deadline
                done = state.step >= end_step or out_of_time
                row = {"step": state.step, "epoch": state.epoch, "seconds": round(state.seconds, 2),
                       "loss": round(loss, 6), "lr": lr, "samples_per_s": round(speed, 3), "val_sdr": ""}
                validating = done or state.step % cfg.val_every == 0
                summary = self.validate() if validating else None
                if summary is not None:
                    row["val_sdr"] = round(summary["model"]["SDR"]["median"], 3)
                    self._open_sparsity_gate(summary["model"]["SDR"]["median"])
                # The row before the checkpoint: a kill between them leaves a row past last.pt,
                # which a resume trims, never a checkpoint whose row is missing.
                if main:
                    run_log.write(row)
                    if summary is not None:
                        run_log.plot()
                if validating or save_now:  # without validation: crash safety only, no decision
                    self._save(validating, summary)
                    last_save = time.monotonic()
                bar.update(state.step, state.seconds - start_seconds, loss=f"{loss:.4f}", samples_s=f"{speed:.1f}", epoch=state.epoch)
                tick = time.monotonic()  # validation and checkpointing are not training time
                if done:
                    break

    def _open_sparsity_gate(self, val_sdr: float) -> None:
        """Start the per-pixel sparsity from the next step once a validation reaches the gate.

        Only validations every ``val_every`` steps count, so that a run stopped between them and
        resumed opens it where an uninterrupted run does. Every rank sees the same summary, so
        all of them open it at the same step. Under ``torch.compile`` the step compiles once more
        when the sparsity term appears.
        """
        cfg, state = self.cfg, self.state
        if cfg.sparsity_gate_db <= 0 or state.sparsity_from >= 0 or val_sdr < cfg.sparsity_gate_db:
            return
        if state.step % cfg.val_every:  # the end-of-run validation: a resumed run would not see it
            return
        state.sparsity_from = state.step + 1
        log.info("validation reached %.2f dB (gate %.1f dB): per-pixel sparsity on from step %d",
                 val_sdr, cfg.sparsity_gate_db, state.sparsity_from)

    def _advance(self, seconds: float) -> None:
        state = self.state
        state.seconds += seconds
        state.step += 1
        if self.cfg.pixel_sparsity and state.step == self.cfg.sparsity_start and self.dist.is_main:
            log.info("step %d: per-pixel sparsity on from the next step%s", state.step,
                     " once its gate opens" if self.cfg.sparsity_gate_db and state.sparsity_from < 0 else "")
        state.batch_in_epoch += 1
        if state.batch_in_epoch == self.cfg.steps_per_epoch:
            state.epoch, state.batch_in_epoch = state.epoch + 1, 0
