"""Several processes training one model: torchrun, DistributedDataParallel and shared decisions.

Launch with torchrun (``torchrun --nproc_per_node=G -m avsep train ...``). torchrun gives every
process RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; :func:`setup` reads them
and joins the process group: NCCL on GPUs (one GPU per process, ``cuda:LOCAL_RANK``), gloo on
CPUs. Without torchrun nothing here communicates and training runs in one process.

``Config.batch_size`` is the **global** batch: each of the W processes takes ``batch_size / W``
items of every step, so a configuration trains the same model on any number of processes
(see docs/scaling.md), and a run may be resumed on another number of processes.

So that no process ever waits forever in a collective:

* every decision (validate, checkpoint, stop) is a function of the step, or of values that rank 0
  measured and every rank received in the one all-reduce of each step (:meth:`DistContext.agree`:
  the clock behind ``--max-minutes`` and ``--save-minutes``);
* only rank 0 writes files;
* collectives time out after ``dist_timeout_minutes``, and torchrun ends the whole job as soon as
  one process exits with an error or is killed.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from avsep.errors import AvsepError
from avsep.utils import pick_device

log = logging.getLogger("avsep")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job: its rank among ``world`` processes and its device."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes logs, curves and checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def local_batch(self, batch_size: int) -> int:
        """This process's share of a global batch of ``batch_size`` items."""
        if batch_size % self.world:
            raise AvsepError(f"batch_size {batch_size} is the global batch and must divide evenly among "
                             f"{self.world} processes; set --batch-size to a multiple of {self.world}")
        return batch_size // self.world

    def agree(self, loss: float, seconds: float, save: bool) -> tuple[float, float, bool]:
        """One all-reduce per step: the mean loss over processes, and rank 0's training clock
        and crash-safety save flag, so that time-based decisions are the same on every rank."""
        if not self.distributed:
            return loss, seconds, save
        main = float(self.is_main)
        values = torch.tensor([loss / self.world, seconds * main, float(save) * main],
                              dtype=torch.float64, device=self.device)
        dist.all_reduce(values)
        mean_loss, clock, flag = values.tolist()
        return mean_loss, clock, flag > 0.5

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, obj)
        return out

    def gather_rows(self, rows: torch.Tensor) -> torch.Tensor:
        """Every rank's ``rows`` (n, ...), concatenated in rank order, on every rank: (world * n, ...).

        Autograd flows back through it (torch.distributed.nn): every rank computes the same loss
        on the gathered rows, the backward sums their gradients for this rank's rows, and DDP's
        average over ranks then gives exactly the gradient of that loss in one process (rows that
        need no gradient, such as labels, just travel). Every rank must call it with rows of one
        shape (the batch divides evenly among ranks).
        """
        if not self.distributed:
            return rows
        from torch.distributed.nn.functional import all_gather

        return torch.cat(all_gather(rows.contiguous()), dim=0)

    def broadcast_buffers(self, module: torch.nn.Module) -> None:
        """Give every rank rank 0's buffers (BatchNorm running statistics).

        Without SyncBatchNorm each rank updates its running statistics from its own part of the
        batch; DDP overwrites them with rank 0's at the start of every training forward, so
        training follows rank 0's. Validation must too: it scores rank 0's model, the one saved.
        """
        if self.distributed:
            for buffer in module.buffers():
                dist.broadcast(buffer.data, src=0)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device_name: str = "auto", timeout_minutes: float = 30.0) -> DistContext:
    """Join torchrun's process group if this process was started by torchrun with several
    processes; otherwise a single-process context on ``device_name``."""
    device = pick_device(device_name)
    if not launched_by_torchrun():
        return DistContext(device=device)
    if not dist.is_available():
        raise AvsepError("this torch build has no torch.distributed: cannot train with several processes")
    if timeout_minutes <= 0:
        raise AvsepError(f"--dist-timeout {timeout_minutes}: must be positive (minutes)")
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise AvsepError(f"LOCAL_RANK {local_rank}: this node has only {torch.cuda.device_count()} GPU(s); "
                             "start at most that many processes per node (--nproc_per_node)")
        device = torch.device("cuda", local_rank)  # one GPU per process, whatever --device named
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(minutes=timeout_minutes))
    if rank != 0:
        log.setLevel(logging.WARNING)  # one copy of every note: rank 0's
    log.info("rank %d of %d on %s (%s backend)", rank, world, device, backend)
    return DistContext(rank, world, local_rank, device)


def teardown(ctx: DistContext) -> None:
    if ctx.distributed and dist.is_initialized():
        dist.destroy_process_group()


def failure_message(ctx: DistContext, err: BaseException) -> str:
    """One line for a collective that failed: another process died, or the job timed out."""
    first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
    return (f"rank {ctx.rank} of {ctx.world}: a collective failed, so another process of the job died or "
            f"stopped answering ({type(err).__name__}: {first}); torchrun's summary names the process "
            "that failed first; resume the job with --resume")


# What gloo and NCCL say when a peer is gone or a collective timed out: before torch 2.2 (and
# still for errors raised inside DDP's backward) these come as plain RuntimeErrors.
PEER_LOST = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "timed out", "Timed out",
             "NCCL communicator was aborted", "ProcessGroupNCCL", "ProcessGroupGloo")


def is_collective_failure(ctx: DistContext, err: BaseException) -> bool:
    """Whether ``err`` means that the job lost a process (only meaningful with several)."""
    dist_error = getattr(dist, "DistError", None)
    if not ctx.distributed:
        return False
    return (dist_error is not None and isinstance(err, dist_error)) or (
        isinstance(err, RuntimeError) and any(text in str(err) for text in PEER_LOST))
