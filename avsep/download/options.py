"""Every setting of a download run, in one place (the CLI fills it from its arguments)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional


@dataclass
class Options:
    workers: int = 4
    max_height: int = 360              # lines; taller videos are scaled down
    cookies: Optional[Path] = None     # Netscape cookies.txt passed to yt-dlp
    rate_limit: Optional[int] = None   # bytes per second per worker
    sleep: float = 0.0                 # seconds each worker waits between two downloads
    retries: int = 5                   # retries of a transient failure, per item and run
    backoff: float = 2.0               # seconds before the first retry; doubles each time
    max_wait: float = 300.0            # cap on any single wait (backoff, Retry-After, pause)
    slowdown_after: int = 3            # throttled failures in a row that pause every worker
    slowdown_pause: float = 60.0       # first global pause, in seconds; doubles on each trip
    socket_timeout: float = 30.0
    retry_failed: bool = False         # try permanent failures of earlier runs again
    shard: tuple[int, int] = (1, 1)    # (I, N): this machine's part of the list
    ffmpeg: Optional[str] = None       # ffmpeg binary; None: the one on PATH
    progress: bool = True
