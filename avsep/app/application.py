"""The app as one object: its temporary folder, the model, the video catalogue, the analysis
queue and the HTTP server; :func:`run` is what ``avsep app`` calls.

Everything the app writes (uploads, browser copies of videos) goes into one temporary folder,
removed by :meth:`App.close`; :func:`run` calls it on Ctrl-C and on SIGTERM.
"""
from __future__ import annotations

import ipaddress
import logging
import shutil
import signal
import socket
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from avsep.app.jobs import AnalysisQueue, ReportingSeparator
from avsep.app.library import Library
from avsep.app.server import AppServer
from avsep.errors import AvsepError

log = logging.getLogger("avsep")


@dataclass
class AppOptions:
    """What ``avsep app`` is given; see ``avsep app --help`` for each."""
    checkpoint: Path
    videos: Optional[Path] = None
    host: str = "127.0.0.1"
    port: int = 8765
    device: str = "auto"
    max_upload_mb: float = 500.0
    max_seconds: float = 600.0
    max_pending: int = 4
    keep_analyses: int = 4
    detect: bool = True
    detector: Optional[str] = None
    tmpdir: Optional[Path] = None


class App:
    """Builds everything and binds the port (so a busy port fails here, before anything is printed)."""

    def __init__(self, options: AppOptions):
        if options.videos is not None and not options.videos.is_dir():
            raise AvsepError(f"--videos {options.videos}: no such folder")
        if options.max_upload_mb <= 0 or options.max_pending < 1 or options.keep_analyses < 1:
            raise AvsepError("--max-upload-mb must be positive, --max-queue and --keep-analyses at least 1")
        self.options = options
        self.loopback = is_loopback(options.host)
        separator = ReportingSeparator(options.checkpoint, options.device)
        self.workdir = Path(tempfile.mkdtemp(prefix="avsep-app-", dir=options.tmpdir))
        try:
            self.library = Library(options.videos, self.workdir, int(options.max_upload_mb * 2 ** 20),
                                   options.max_seconds)
            self.queue = AnalysisQueue(separator, self._detector_factory() if options.detect else None,
                                       options.max_pending, options.keep_analyses)
            self.server = AppServer((options.host, options.port), self)
        except OSError as err:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise AvsepError(f"cannot listen on {options.host}:{options.port}: {err.strerror or err}") from None
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise
        self.queue.start()
        self._thread: Optional[threading.Thread] = None

    def _detector_factory(self):
        options = self.options

        def make():
            from avsep.inference.detector import DEFAULT_WEIGHTS, YoloDetector

            device = "cpu" if options.device == "auto" else options.device
            return YoloDetector(options.detector or DEFAULT_WEIGHTS, device=device)
        return make

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        return f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"

    def limits(self) -> dict:
        """What the page tells the user about the limits."""
        o = self.options
        return {"max_upload_mb": o.max_upload_mb, "max_seconds": o.max_seconds, "max_queue": o.max_pending,
                "keep_analyses": o.keep_analyses}

    def start(self) -> "App":
        """Serve in a background thread (tests, notebooks); :meth:`close` stops it."""
        self._thread = threading.Thread(target=self.server.serve_forever, name="avsep-app-http", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and remove every temporary file (uploads, browser copies)."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(5)
        self.server.server_close()
        self.queue.stop(timeout=2.0)
        self.library.remove_all_uploads()
        shutil.rmtree(self.workdir, ignore_errors=True)
        log.info("removed the app's temporary folder %s", self.workdir)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
        except (OSError, ValueError):
            return False


def run(options: AppOptions) -> int:
    """Serve until Ctrl-C or SIGTERM, then clean up."""
    app = App(options)
    if not app.loopback:
        log.warning("--host %s: the app is reachable from other machines, and it has no authentication: anyone "
                    "who can reach it can upload videos and use this machine's CPU", options.host)

    def stop(signum, frame):  # SIGTERM ends serve_forever the way Ctrl-C does
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    # Set for SIGINT too: a process started with SIGINT ignored (a background job of a script, or
    # a child of a process that ignores it) would otherwise never stop on Ctrl-C or `kill -INT`.
    previous_interrupt = signal.signal(signal.SIGINT, stop)
    print(f"avsep app: open {app.url}   (Ctrl-C to stop; temporary files in {app.workdir})", flush=True)
    try:
        app.server.serve_forever()
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        # No second Ctrl-C or SIGTERM in the middle of the cleanup: it takes a moment only.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            app.close()
        finally:
            signal.signal(signal.SIGTERM, previous)
            signal.signal(signal.SIGINT, previous_interrupt)
    return 0
