"""Pacing shared by all workers: per-item backoff, and a global slow-down when YouTube pushes back.

A single 429 is a hint; several in a row (or "confirm you're not a bot") mean the whole IP is being
throttled, and every worker that keeps going only makes it worse and burns through the list
recording failures. So :class:`Throttle` counts throttled failures across workers and, past a
threshold, pauses everyone and spaces out later requests; successes relax it again.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable, Optional

log = logging.getLogger("avsep")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter, each wait capped at ``max_wait`` (the runner bounds the retries)."""

    base: float = 2.0        # seconds before the first retry
    max_wait: float = 300.0  # no single wait is longer than this

    def delay(self, attempt: int, retry_after: Optional[float] = None,
              rng: Callable[[], float] = random.random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0-based).

        A server's Retry-After is a floor (waiting less just earns another 429); jitter is added
        on top of it so that workers told the same thing do not all come back at once.
        """
        exponential = self.base * 2 ** attempt
        if retry_after is not None:
            wait = max(retry_after, 0.0) + self.base * rng() * 0.5
        else:
            wait = exponential * (0.5 + 0.5 * rng())  # "equal jitter": between half and all of it
        return min(wait, self.max_wait)


class Throttle:
    """Global pacing, safe to share between threads.

    ``--sleep`` is each worker's pause between two downloads. On top of it, after ``threshold``
    throttled failures in a row (across workers) every worker pauses for ``pause`` seconds,
    doubling on each further trip up to ``max_wait``, and requests are spaced by a global interval
    that doubles too; each success halves the interval again.
    """

    def __init__(self, sleep: float = 0.0, threshold: int = 3, pause: float = 60.0, max_wait: float = 300.0,
                 stop: Optional[threading.Event] = None, clock: Callable[[], float] = time.monotonic):
        self.sleep, self.threshold, self.pause, self.max_wait = sleep, max(1, threshold), pause, max_wait
        self.stop = stop or threading.Event()
        self.clock = clock
        self.lock = threading.Lock()
        self.in_a_row = 0       # throttled failures since the last success
        self.trips = 0          # times the threshold was reached
        self.interval = 0.0     # global seconds between request starts
        self.paused_until = 0.0
        self.next_slot = 0.0
        self.local = threading.local()

    def wait_turn(self) -> bool:
        """Block until this worker may start a request; False if the run is being stopped."""
        with self.lock:
            now = self.clock()
            slot = max(now, self.paused_until, self.next_slot)
            self.next_slot = slot + self.interval
        last = getattr(self.local, "last_start", None)
        if self.sleep and last is not None:
            slot = max(slot, last + self.sleep * (0.75 + 0.5 * random.random()))
        if slot > self.clock() and self.stop.wait(slot - self.clock()):
            return False
        self.local.last_start = self.clock()
        return not self.stop.is_set()

    def sleep_for(self, seconds: float) -> bool:
        """Sleep unless stopped; False if the run is being stopped."""
        return not self.stop.wait(max(0.0, seconds))

    def success(self) -> None:
        with self.lock:
            self.in_a_row = 0
            self.interval = self.interval / 2 if self.interval > 0.5 else 0.0

    def throttled(self, reason: str) -> None:
        """Count a 429 or bot check; past the threshold, pause every worker."""
        with self.lock:
            self.in_a_row += 1
            if self.in_a_row < self.threshold:
                return
            self.in_a_row = 0
            self.trips += 1
            pause = min(self.pause * 2 ** (self.trips - 1), self.max_wait)
            self.paused_until = max(self.paused_until, self.clock() + pause)
            self.interval = min(max(self.interval * 2, self.sleep, self.pause / 10), self.max_wait)
        log.warning("%d %s errors in a row: pausing all workers for %.3g s, then one request every %.2g s. "
                    "Consider --cookies, a lower --workers or a longer --sleep.", self.threshold, reason, pause,
                    self.interval)
