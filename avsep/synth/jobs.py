"""Running generation jobs, in worker processes when asked, and checks shared by the generators."""
from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Callable, Sequence

from tqdm import tqdm

from avsep.synth.audio import resolve_backend
from avsep.synth.backgrounds import photos
from avsep.synth.instruments import get_instrument
from avsep.synth.seeds import check_pool
from avsep.synth.soundfonts import pool_soundfonts
from avsep.synth.sprites import instrument_sprite

MIN_SIZE = 32


def check_size(size: Sequence[int]) -> tuple[int, int]:
    """``(width, height)`` as ints; raises ``ValueError`` unless both are even and at least
    ``MIN_SIZE`` (H.264 in yuv420p needs even sizes)."""
    try:
        w, h = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"frame size must be (width, height), got {size!r}") from None
    if w < MIN_SIZE or h < MIN_SIZE or w % 2 or h % 2:
        raise ValueError(f"frame size {w}x{h}: width and height must be even and at least {MIN_SIZE}")
    return w, h


def prepare(labels: Sequence[str], pool: str, backend: str) -> str:
    """Check the labels and pool, and log each fallback once here in the parent process
    (workers stay quiet); returns the resolved audio backend."""
    check_pool(pool)
    for label in labels:
        instrument_sprite(get_instrument(label))  # logs here, once, if a shape replaces the emoji
    backend = resolve_backend(backend)
    if backend == "fluidsynth":
        pool_soundfonts(pool)
    photos(pool)
    return backend


def _quiet_worker() -> None:
    # The parent already logged which fallbacks are in use; workers would repeat it.
    logging.getLogger("avsep.synth").setLevel(logging.ERROR)


def _call(job: tuple[Callable[..., Any], dict[str, Any]]) -> Any:
    fn, kwargs = job
    return fn(**kwargs)


def run_jobs(fn: Callable[..., Any], jobs: list[dict[str, Any]], workers: int = 1, desc: str = "",
             progress: bool = True) -> list[Any]:
    """``[fn(**job) for job in jobs]``, in ``workers`` processes when more than one."""
    results = []
    # A `with` block closes the bar on an error too, so that the error is not printed on its line.
    with tqdm(total=len(jobs), desc=desc, unit="file", disable=not progress or not jobs) as bar:
        if workers > 1 and len(jobs) > 1:
            # spawn, not fork: the caller may hold torch/OpenMP threads that do not survive a fork.
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx, initializer=_quiet_worker) as pool:
                for result in pool.map(_call, [(fn, j) for j in jobs]):
                    results.append(result)
                    bar.update()
        else:
            for job in jobs:
                results.append(fn(**job))
                bar.update()
    return results
