"""A local stand-in for YouTube: a threaded HTTP server that serves generated videos and fails on cue.

Tests point ``avsep download --url-template 'http://127.0.0.1:PORT/{id}.mp4'`` at it. Each path is a
:class:`Route` that says what to serve and which failures to inject first:

* unknown paths answer 404;
* ``fail=[(429, {"Retry-After": "1"}), (500, {})]`` answers those statuses to the first requests, then the file;
* ``cut=N`` sends the full Content-Length but closes the connection half way, for the first N full-body GETs;
* ``rate=BYTES_PER_S`` trickles the body out slowly (for kill -9 tests);
* any ``content_type``/``body`` can be served, e.g. an HTML page under a ``.mp4`` name.

HTTP Range requests are honoured (206 + Content-Range) because ffmpeg seeks with them when yt-dlp
downloads a time range. Every request is logged with its time, so tests can check that a client
waited for Retry-After. The server shuts itself down after ``lifetime`` seconds at the latest, so a
hung test can never leave it running.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from fractions import Fraction
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import numpy as np


@dataclass
class Route:
    body: bytes
    content_type: str = "video/mp4"
    fail: list = field(default_factory=list)  # [(status, headers)] answered to the first requests, in order
    cut: int = 0                              # full-body GETs to cut half way
    rate: Optional[float] = None              # bytes per second, None = as fast as possible


@dataclass
class Hit:
    path: str
    method: str
    status: int
    time: float
    range: Optional[str]
    cookie: Optional[str] = None


class FakeYouTube:
    """``with FakeYouTube() as yt: yt.add('abc.mp4', Route(data)); url = yt.url('abc.mp4')``."""

    def __init__(self, lifetime: float = 300.0):
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        self.lock = threading.Lock()
        self.lifetime = lifetime
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._watchdog = threading.Timer(lifetime, self.stop)
        self._watchdog.daemon = True

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> "FakeYouTube":
        self._thread.start()
        self._watchdog.start()
        return self

    def stop(self) -> None:
        self._watchdog.cancel()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "FakeYouTube":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- configuration ---------------------------------------------------------------------
    @property
    def template(self) -> str:
        return f"http://127.0.0.1:{self.port}/{{id}}.mp4"

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def add(self, name: str, route: Route) -> Route:
        with self.lock:
            self.routes[name] = route
        return route

    def hits_for(self, name: str) -> list[Hit]:
        with self.lock:
            return [h for h in self.hits if h.path == name]

    # --- request handling (called from server threads) --------------------------------------
    def _plan(self, name: str, method: str, range_header: Optional[str], cookie: Optional[str] = None):
        """Decide the response under the lock: (status, headers, body, cut_at, rate)."""
        with self.lock:
            route = self.routes.get(name)
            if route is None:
                plan = (404, {}, b"not found", None, None)
            elif route.fail:
                code, headers = route.fail.pop(0)
                plan = (code, dict(headers), f"error {code}".encode(), None, None)
            else:
                plan = _serve(route, method, range_header)
            self.hits.append(Hit(name, method, plan[0], time.monotonic(), range_header, cookie))
            return plan


def _serve(route: Route, method: str, range_header: Optional[str]):
    data, headers = route.body, {"Content-Type": route.content_type, "Accept-Ranges": "bytes"}
    start, end, status = 0, len(data) - 1, 200
    match = re.fullmatch(r"bytes=(\d*)-(\d*)", (range_header or "").strip())
    if match and data:
        first, last = match.groups()
        if first:
            start, end = int(first), min(int(last), end) if last else end
        elif last:  # a suffix range: the last N bytes
            start = max(0, len(data) - int(last))
        if start >= len(data):
            return 416, {"Content-Range": f"bytes */{len(data)}"}, b"", None, None
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
    body = data[start:end + 1]
    cut_at = None
    if method == "GET" and route.cut > 0 and start == 0 and len(body) > 1000:
        route.cut -= 1
        cut_at = len(body) // 2
    return status, headers, body, cut_at, route.rate


def _handler_for(fake: FakeYouTube):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def do_HEAD(self) -> None:
            self._respond("HEAD")

        def do_GET(self) -> None:
            self._respond("GET")

        def _respond(self, method: str) -> None:
            name = self.path.split("?", 1)[0].lstrip("/")
            status, headers, body, cut_at, rate = fake._plan(name, method, self.headers.get("Range"),
                                                             self.headers.get("Cookie"))
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            if cut_at is not None or status >= 400:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if method == "HEAD":
                return
            try:
                self._send_body(body if cut_at is None else body[:cut_at], rate)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client went away (e.g. it was killed)
            if cut_at is not None:
                self.close_connection = True

        def _send_body(self, body: bytes, rate: Optional[float]) -> None:
            if not rate:
                self.wfile.write(body)
                return
            chunk = max(1, int(rate / 20))
            for i in range(0, len(body), chunk):
                self.wfile.write(body[i:i + chunk])
                self.wfile.flush()
                time.sleep(chunk / rate)

    return Handler


# --- generated test videos -----------------------------------------------------------------------

def make_video(path: Path, *, seconds: float = 12.0, width: int = 320, height: int = 240, fps: int = 10,
               tone: float = 440.0, container: str = "mp4", vcodec: str = "libx264", acodec: str = "aac",
               sample_rate: int = 22050) -> Path:
    """Write a small test video with PyAV: a moving colour gradient and a sine tone.

    A short GOP keeps seeks (and so time-range downloads) cheap.
    """
    import av

    path = Path(path)
    with av.open(str(path), "w", format=container) as out:
        video = out.add_stream(vcodec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"g": str(fps)} if vcodec != "libx264" else {"preset": "ultrafast", "g": str(fps)}
        audio = out.add_stream(acodec, rate=sample_rate)
        audio.layout = "mono" if acodec == "aac" else "stereo"
        _write_frames(out, video, width, height, fps, seconds, tone)
        _write_audio(out, audio, sample_rate, seconds, tone)
    return path


def _write_frames(out, stream, width: int, height: int, fps: int, seconds: float, tone: float) -> None:
    import av

    ys, xs = np.mgrid[0:height, 0:width]
    for i in range(int(seconds * fps)):
        img = np.stack([(xs + 8 * i) % 256, (ys + 4 * i) % 256, np.full_like(xs, int(tone) % 256)], -1)
        frame = av.VideoFrame.from_ndarray(img.astype(np.uint8), format="rgb24")
        frame.pts, frame.time_base = i, Fraction(1, fps)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def _write_audio(out, stream, sample_rate: int, seconds: float, tone: float) -> None:
    import av

    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wave = (0.3 * np.sin(2 * np.pi * tone * t)).astype(np.float32)
    channels = 1 if stream.layout.name == "mono" else 2
    block = 1024
    for i in range(0, len(wave), block):
        chunk = np.tile(wave[i:i + block], (channels, 1))
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="fltp", layout=stream.layout.name)
        frame.sample_rate, frame.pts, frame.time_base = sample_rate, i, Fraction(1, sample_rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)
