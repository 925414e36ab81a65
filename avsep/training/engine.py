"""The training step on the machine at hand: DDP, mixed precision, SyncBatchNorm, torch.compile.

These are run settings (:class:`avsep.config.RunSettings`), never part of a checkpoint's
configuration. Each one that the device cannot honour falls back with a one-line note:

* ``--precision fp16``: float16 autocast with a gradient scaler on CUDA; fp32 on CPU.
* ``--precision bf16``: bfloat16 autocast on CUDA GPUs that support it (fp32 with a note on
  older ones). On a CPU it is honoured: torch's CPU autocast is faster than fp32 where the CPU
  multiplies bfloat16 natively (AVX512-BF16 or AMX: 1.2x for a `small` step on the 2-core CPU
  of docs/benchmarks.md, ``benchmarks/bench_precision.py``) and slower elsewhere, with a note.
* ``auto`` (the quickstart's default): bf16 on a CPU with native bfloat16, else fp32.
* ``--sync-bn``: SyncBatchNorm with several processes on CUDA (torch has no CPU kernel for it).
* ``--compile``: ``torch.compile`` of the training step on CUDA; eager on CPU.

Validation always runs in fp32 on the plain model, so scores compare across these settings.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

from avsep.errors import AvsepError
from avsep.training.distributed import DistContext

log = logging.getLogger("avsep")
PRECISIONS = ("fp32", "bf16", "fp16")
PRECISION_CHOICES = PRECISIONS + ("auto",)  # what a run may ask for: auto picks one of PRECISIONS
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs that multiply bf16 natively
# Prefixes that wrappers add to state-dict keys: DDP's module, torch.compile's _orig_mod.
WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class TrainingObjective(nn.Module):
    """The training forward as one module, ``batch -> loss``, so that DDP can wrap it.

    DDP reduces gradients through hooks installed by its own ``forward``; calling the model's
    methods (``sound_features``, ``view_grids``...) on ``ddp.module`` would skip them. Wrapping
    this module instead runs the whole loss through DDP's forward.

    Args:
        model: the :class:`~avsep.models.sop.SoundOfPixels` being trained.
        loss_fn: ``loss_fn(model, batch) -> loss``, a scalar tensor.
        device: where batches go (copied with ``non_blocking`` from pinned memory).
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[nn.Module, dict], torch.Tensor], device: torch.device):
        super().__init__()
        self.model, self.loss_fn, self.device = model, loss_fn, device

    def forward(self, batch: dict) -> torch.Tensor:
        batch = {k: v.to(self.device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
        return self.loss_fn(self.model, batch)


@dataclass
class Precision:
    """Autocast dtype (None: fp32) and gradient scaler (fp16 only) of the training step."""
    name: str = "fp32"
    device_type: str = "cpu"
    dtype: Optional[torch.dtype] = None
    scaler: Any = None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether the CPU lists a native bfloat16 instruction set (Linux; False where unknown)."""
    try:
        flags = next((line.split(":", 1)[1].split() for line in Path(cpuinfo).read_text().splitlines()
                      if line.startswith("flags")), [])
    except OSError:
        return False
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def auto_precision(device: torch.device) -> str:
    """``auto``: bf16 on a CPU with native bfloat16 (faster there, and trains alike), else fp32."""
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def resolve_precision(requested: str, device: torch.device) -> Precision:
    """The precision the device can run, with a one-line note where it is not the one asked for."""
    if requested not in PRECISION_CHOICES:
        raise AvsepError(f"--precision {requested!r}: choose one of {', '.join(PRECISIONS)} or auto")
    if requested == "auto":
        requested = auto_precision(device)
        log.info("--precision auto: %s on %s", requested, device)
    cuda = device.type == "cuda"
    if requested == "fp16":
        if not cuda:
            log.info("--precision fp16: float16 autocast needs CUDA; training in fp32 on %s", device)
            return Precision(device_type=device.type)
        scaler_cls = getattr(torch.amp, "GradScaler", None)
        scaler = scaler_cls("cuda") if scaler_cls else torch.cuda.amp.GradScaler()
        return Precision("fp16", "cuda", torch.float16, scaler)
    if requested == "bf16":
        if cuda and not torch.cuda.is_bf16_supported():
            log.info("--precision bf16: %s has no bfloat16 support; training in fp32", torch.cuda.get_device_name(device))
            return Precision(device_type="cuda")
        if not cuda and not cpu_has_native_bf16():
            log.info("--precision bf16 on %s: torch's CPU autocast, as asked; this CPU lists no native "
                     "bfloat16 (%s), so it is likely slower than fp32", device, " or ".join(NATIVE_BF16_FLAGS))
        return Precision("bf16", device.type, torch.bfloat16)
    return Precision(device_type=device.type)


def use_sync_bn(model: nn.Module, ctx: DistContext, wanted: bool) -> nn.Module:
    """SyncBatchNorm in place of BatchNorm when asked for and possible (several CUDA processes).

    The converted modules keep the same parameters and state-dict keys, so checkpoints do not
    change.
    """
    if not wanted:
        return model
    if not ctx.distributed:
        log.info("--sync-bn: one process, nothing to synchronise; plain BatchNorm")
        return model
    if ctx.device.type != "cuda":
        log.info("--sync-bn: SyncBatchNorm needs CUDA (torch has no CPU kernel); "
                 "BatchNorm statistics stay per process on %s", ctx.device)
        return model
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def wrap_objective(objective: TrainingObjective, ctx: DistContext, compile_step: bool) -> nn.Module:
    """DDP around the objective with several processes, then ``torch.compile`` if asked (CUDA)."""
    wrapped: nn.Module = objective
    if ctx.distributed:
        from torch.nn.parallel import DistributedDataParallel as DDP

        # DDP's constructor broadcasts rank 0's parameters and buffers, so every rank starts from
        # rank 0's weights (ImageNet ones included, which only rank 0 loads).
        ids = [ctx.device.index] if ctx.device.type == "cuda" else None
        wrapped = DDP(objective, device_ids=ids)  # buffers: rank 0's, broadcast at each forward (the default)
    if compile_step:
        if ctx.device.type != "cuda":
            log.info("--compile: torch.compile is used on CUDA only; running eagerly on %s", ctx.device)
        else:
            wrapped = torch.compile(wrapped)  # compiling DDP itself lets it split graphs at bucket bounds
    return wrapped


def optimizer_step(step_module: nn.Module, batch: dict, optimizer: torch.optim.Optimizer,
                   precision: Precision) -> float:
    """Forward (under autocast), backward (scaled for fp16) and the optimiser step; returns the loss."""
    with precision.autocast():
        loss = step_module(batch)
    optimizer.zero_grad(set_to_none=True)
    if precision.scaler is not None:
        precision.scaler.scale(loss).backward()
        precision.scaler.step(optimizer)
        precision.scaler.update()
    else:
        loss.backward()
        optimizer.step()
    return loss.item()


def plain_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A model state dict without the ``module.`` / ``_orig_mod.`` prefixes wrappers add.

    avsep saves the unwrapped model, so its checkpoints never have them; this only makes state
    dicts saved by other code load too.
    """
    out = {}
    for key, value in state.items():
        while key.startswith(WRAPPER_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def unwrap_model(module: nn.Module) -> nn.Module:
    """The plain model inside DDP, ``torch.compile`` and :class:`TrainingObjective` wrappers.

    Call the model's own methods (``parameter_groups``, ``activate``, ``sound_features``...) on
    this, never on a wrapper; but train through the wrapper's forward (see TrainingObjective).
    """
    while True:
        inner = getattr(module, "_orig_mod", None) or getattr(module, "module", None)
        if isinstance(module, TrainingObjective):
            inner = module.model
        if not isinstance(inner, nn.Module):
            return module
        module = inner
