"""The HTTP side of the app: the page, the videos, and the JSON and WAV answers it asks for.

Routes (``ID`` is a video id from ``/api/videos``; nothing is ever looked up by path)::

    GET  /                     the page          GET  /static/NAME  app.js, audio.js, ...
    GET  /api/videos           videos and limits POST /api/upload?name=N    body: the file
    POST /api/analyze?video=ID queue it          GET  /api/status?video=ID   progress
    GET  /api/analysis?video=ID heatmaps, objects, sizes
    GET  /api/audio?video=ID&region=R&mode=M&first=N&count=C    WAV of samples [N, N + C)
    GET  /api/stem.wav?video=ID&region=R&mode=M                 the whole stem, as a download
    GET  /media/ID             the video itself (HTTP ranges, for seeking)

``R`` is ``point:X,Y``, ``box:X0,Y0,X1,Y1`` (pixels of the original frame) or ``track:N``;
``M`` is ``spot``, ``residual`` or ``original``. Audio is counted in samples at the video's
own rate (``X-Avsep-Rate``), so that the page can join chunks without a gap or an overlap.
"""
from __future__ import annotations

import json
import logging
import math
import re
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from avsep.app.library import UploadError, safe_name
from avsep.app.stems import span_audio, wav_bytes
from avsep.errors import AvsepError
from avsep.inference.regions import Box, Point

log = logging.getLogger("avsep")
STATIC = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
          "audio.js": "text/javascript; charset=utf-8", "draw.js": "text/javascript; charset=utf-8",
          "app.css": "text/css; charset=utf-8"}
# Everything from this server only: the page works offline and cannot pull in anything else.
CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; "
       "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
MAX_CHUNK_SECONDS = 30.0
RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class AppServer(ThreadingHTTPServer):
    """A threading HTTP server that knows the app (``state``: an :class:`avsep.app.App`)."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, state):
        super().__init__(address, Handler)
        self.state = state


class Handler(BaseHTTPRequestHandler):
    """One request; errors meant for the user become ``{"error": "..."}`` with a 4xx status."""
    protocol_version = "HTTP/1.1"      # keep-alive: no new connection per audio chunk
    server_version = "avsep-app"
    server: AppServer

    # --- dispatch ------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        self._dispatch({"/": self.page, "/api/videos": self.videos, "/api/status": self.status,
                        "/api/analysis": self.analysis, "/api/audio": self.audio, "/api/stem.wav": self.download})

    def do_POST(self) -> None:  # noqa: N802
        if urlsplit(self.path).path != "/api/upload":
            self._skip_body()
        self._dispatch({"/api/upload": self.upload, "/api/analyze": self.analyze})

    def _skip_body(self) -> None:
        """Read a body nobody needs, so the connection can serve the next request; a large one
        closes the connection instead."""
        length = self.headers.get("Content-Length", "0")
        size = int(length) if length.isdigit() else 0
        if size > 65536:
            self.close_connection = True
        elif size:
            self.rfile.read(size)

    def _dispatch(self, routes: dict) -> None:
        url = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        try:
            if not self._host_allowed():
                raise _Refused(HTTPStatus.FORBIDDEN, "this app only answers requests addressed to its own host name")
            if url.path in routes:
                routes[url.path]()
            elif self.command == "GET" and url.path.startswith("/static/"):
                self.static(url.path[len("/static/"):])
            elif self.command == "GET" and url.path.startswith("/media/"):
                self.media(url.path[len("/media/"):])
            else:
                raise _Refused(HTTPStatus.NOT_FOUND, f"{url.path}: no such page")
        except _Refused as err:
            self._error(err.status, err.message)
        except UploadError as err:
            log.warning("upload refused: %s", err)
            self.close_connection = True   # the body may be unread: do not reuse the connection
            self._error(err.status, str(err))
        except AvsepError as err:
            self._error(HTTPStatus.BAD_REQUEST, str(err))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser gave up on this request (seeking does that); nothing to answer
        except Exception as err:  # noqa: BLE001 - one bad request must not take the server down
            log.exception("%s %s failed", self.command, self.path)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {type(err).__name__}: {err}")

    def _host_allowed(self) -> bool:
        """Refuse requests for other host names (DNS rebinding: a web page making the browser
        talk to this server under its own name) when the app listens on loopback only."""
        if not self.server.state.loopback:
            return True
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        return host in {"127.0.0.1", "localhost", "::1"}

    # --- the page ------------------------------------------------------------------------------
    def page(self) -> None:
        self.static("index.html")

    def static(self, name: str) -> None:
        if name not in STATIC:
            raise _Refused(HTTPStatus.NOT_FOUND, f"/static/{name}: no such file")
        body = resources.files("avsep.app").joinpath("static", name).read_bytes()
        self._send(HTTPStatus.OK, body, STATIC[name], {"Cache-Control": "no-cache"})

    # --- JSON ----------------------------------------------------------------------------------
    def videos(self) -> None:
        state = self.server.state
        self._json({"videos": [e.public() for e in state.library.scan()], "limits": state.limits(),
                    "detector": state.queue.detector_note})

    def upload(self) -> None:
        length = self.headers.get("Content-Length")
        name = self.query.get("name") or "upload"
        entry = self.server.state.library.add_upload(self.rfile, int(length) if length and length.isdigit() else None,
                                                     name)
        log.info("upload %s saved as %s", safe_name(name), entry.id)
        self._json({"video": entry.public()})

    def analyze(self) -> None:
        state = self.server.state
        entry = state.library.get(self._param("video"))
        try:
            info = state.library.check(entry)
        except AvsepError as err:
            log.warning("cannot analyse %s: %s", entry.name, err)
            raise
        preview = None if info["playable"] else state.workdir / "previews" / f"{entry.id}.mp4"
        if preview is not None:
            preview.parent.mkdir(exist_ok=True)
        state.queue.submit(entry.id, entry.path, preview)
        self.status()

    def status(self) -> None:
        self._json(self.server.state.queue.status(self._param("video")))

    def analysis(self) -> None:
        state = self.server.state
        entry = state.library.get(self._param("video"))
        job = state.queue.done(entry.id)
        a = job.analysis
        self._json({"id": entry.id, "name": entry.name, "media": f"/media/{entry.id}",
                    "duration": round(a.duration, 3), "frame": list(a.frame_size),
                    "rate": a.input_rate, **job.page})

    # --- audio ---------------------------------------------------------------------------------
    def audio(self) -> None:
        began = time.perf_counter()
        a, region, mode = self._query_parts()
        first, count = int(self._number("first", 0)), int(self._number("count", 5 * a.input_rate))
        if first < 0 or count <= 0:
            raise AvsepError("first must be >= 0 and count positive")
        last = min(len(a.input_mixture), first + min(count, int(MAX_CHUNK_SECONDS * a.input_rate)))
        body = wav_bytes(span_audio(a, region, first, last, mode), a.input_rate)
        took = (time.perf_counter() - began) * 1000
        self._send(HTTPStatus.OK, body, "audio/wav",
                   {"X-Avsep-First": str(first), "X-Avsep-Last": str(max(first, last)), "X-Avsep-Rate": str(a.input_rate),
                    "Server-Timing": f"query;dur={took:.1f}", "Cache-Control": "no-store"})

    def download(self) -> None:
        a, region, mode = self._query_parts()
        entry = self.server.state.library.get(self._param("video"))
        body = wav_bytes(span_audio(a, region, 0, len(a.input_mixture), mode), a.input_rate)
        tag = self.query.get("region", "").replace(":", "_").replace(",", "_") or "all"
        name = safe_name(f"{Path(entry.name).stem}_{mode}_{tag}.wav")
        self._send(HTTPStatus.OK, body, "audio/wav", {"Content-Disposition": f'attachment; filename="{name}"'})

    def _query_parts(self):
        """(analysis, region or None, mode) of an audio request."""
        state = self.server.state
        entry = state.library.get(self._param("video"))
        analysis = state.queue.done(entry.id).analysis
        mode = self.query.get("mode", "spot")
        text = self.query.get("region", "")
        region = parse_region(text, analysis) if text else None
        if region is None and mode != "original":
            raise AvsepError("click the video (or drag a box) to choose what to separate")
        return analysis, region, mode

    # --- the video file ------------------------------------------------------------------------
    def media(self, video_id: str) -> None:
        state = self.server.state
        entry = state.library.get(video_id)
        info = state.library.check(entry)
        path = entry.path if info["playable"] else state.workdir / "previews" / f"{entry.id}.mp4"
        if not path.is_file():
            raise _Refused(HTTPStatus.NOT_FOUND, "the browser copy of this video is not written yet")
        size = path.stat().st_size
        first, last, status = 0, size - 1, HTTPStatus.OK
        match = RANGE.match(self.headers.get("Range", ""))
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                first, last = int(match.group(1)), min(size - 1, int(match.group(2) or size - 1))
            else:
                first = max(0, size - int(match.group(2)))
            if first > last:
                self._send(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", "text/plain",
                           {"Content-Range": f"bytes */{size}"})
                return
            status = HTTPStatus.PARTIAL_CONTENT
        headers = {"Accept-Ranges": "bytes", "Content-Length": str(last - first + 1)}
        if status == HTTPStatus.PARTIAL_CONTENT:
            headers["Content-Range"] = f"bytes {first}-{last}/{size}"
        self._head(status, "video/mp4" if not info["playable"] else _video_type(path), headers)
        with open(path, "rb") as f:
            f.seek(first)
            remaining = last - first + 1
            while remaining > 0:
                chunk = f.read(min(1 << 16, remaining))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)

    # --- helpers -------------------------------------------------------------------------------
    def _param(self, name: str) -> str:
        if not self.query.get(name):
            raise AvsepError(f"missing parameter {name}=")
        return self.query[name]

    def _number(self, name: str, default: float) -> float:
        try:
            value = float(self.query.get(name, default))
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise AvsepError(f"{name}={self.query[name]!r}: expected a number")
        return value

    def _json(self, data: dict, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", {"Cache-Control": "no-store"})

    def _error(self, status: int, message: str) -> None:
        try:
            self._json({"error": message}, status)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self._head(status, content_type, {"Content-Length": str(len(body)), **(headers or {})})
        self.wfile.write(body)

    def _head(self, status: int, content_type: str, headers: dict) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - http.server's signature
        log.debug("%s - %s", self.address_string(), format % args)


class _Refused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def parse_region(text: str, analysis):
    """``point:X,Y``, ``box:X0,Y0,X1,Y1`` or ``track:N`` as the region it names, checked against
    the analysed frame (a one-line AvsepError otherwise)."""
    kind, _, values = text.partition(":")
    try:
        numbers = [float(v) for v in values.split(",")] if values else []
    except ValueError:
        numbers = []
    wanted = {"point": 2, "box": 4, "track": 1}.get(kind)
    if wanted is None or len(numbers) != wanted or not all(math.isfinite(v) for v in numbers):
        raise AvsepError(f"region={text!r}: expected point:X,Y, box:X0,Y0,X1,Y1 or track:N")
    if kind == "track":
        return analysis.region(track=int(numbers[0]))
    return analysis.region(point=Point(*numbers)) if kind == "point" else analysis.region(box=Box(*numbers))


def _video_type(path: Path) -> str:
    # QuickTime files are served as mp4 (the same format family): browsers refuse video/quicktime.
    return {".webm": "video/webm", ".mkv": "video/x-matroska"}.get(path.suffix.lower(), "video/mp4")
