"""Driving the app's page in a real headless Chromium, for the browser test and the benchmark.

Needs Playwright (``pip install playwright``; the test extra has it) and a Chromium binary: the
system's (``apt-get install chromium`` on Debian: ``/usr/bin/chromium``), or ``$AVSEP_CHROMIUM``.
Playwright's own browser download is not used, so nothing is fetched from the network.

:class:`AppPage` clicks where a user would: it maps pixels of the original frame to the page
from the ``<video>`` element's box and the picture's size (letterboxing included) on its own,
not with the page's code, so a wrong mapping in the page shows up as a wrong region. The audio
it returns is what the page received: the bodies of the ``/api/audio`` answers, joined.
"""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
import wave
from pathlib import Path
from typing import Iterator, Optional
from urllib.parse import parse_qs, urlsplit

import numpy as np

from avsep.errors import AvsepError

# Headless, offline, quiet: no sandbox (containers run as root), no GPU, no background traffic,
# and shared memory in /tmp (a container's /dev/shm may be too small for the renderer).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> Optional[str]:
    """``$AVSEP_CHROMIUM``, else the system's chromium (None if there is none)."""
    path = os.environ.get("AVSEP_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    return path if path and Path(path).exists() else None


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A headless Chromium browser (Playwright's), closed afterwards."""
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if path is None:
        raise AvsepError("no Chromium found: apt-get install chromium, or set AVSEP_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class AppPage:
    """One tab on the app; ``errors`` collects the page's JavaScript errors, and ``offsite`` the
    requests it made to any other place than the app (the app must work offline). They are only
    watched, not intercepted, so that timings stay what a user meets."""

    def __init__(self, browser, url: str, size=(1280, 860)):
        self.page = browser.new_page(viewport={"width": size[0], "height": size[1]})
        # Audio answers are taken from "requestfinished", never "response": a response's body()
        # waits for its last byte, forever if the page dropped the request mid-way.
        self.audio_requests: list = []
        self.errors: list[str] = []
        self.offsite: list[str] = []
        local = ("/".join(url.split("/")[:3]) + "/", "data:", "blob:")
        self.page.on("request", lambda r: None if r.url.startswith(local) else self.offsite.append(r.url))
        self.page.on("requestfinished", lambda r: self.audio_requests.append(r) if "/api/audio?" in r.url else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url)

    def open(self, name: str, timeout_s: float = 300) -> dict:
        """Click a video in the list and wait for its analysis; returns the page's info about it."""
        self.page.get_by_role("button", name=name, exact=False).first.click()
        self.page.wait_for_selector('#stage[data-ready="1"]', timeout=timeout_s * 1000)
        self.wait_until("video.readyState >= 2")
        return self.page.evaluate("avsep.state.info")

    def wait_until(self, expression: str, timeout_s: float = 60) -> None:
        """Poll a JavaScript expression until it is true. (Playwright's wait_for_function
        evaluates its predicate with eval, which the app's Content-Security-Policy forbids.)"""
        deadline = time.monotonic() + timeout_s
        while not self.page.evaluate(expression):
            if time.monotonic() > deadline:
                raise AssertionError(f"still false after {timeout_s} s: {expression}")
            self.page.wait_for_timeout(50)

    def frame_to_page(self, x: float, y: float) -> tuple[float, float]:
        """Page coordinates of pixel (x, y) of the original frame, with object-fit: contain."""
        box = self.page.locator("#video").bounding_box()
        shown_w, shown_h, frame_w, frame_h = self.page.evaluate(
            "[video.videoWidth, video.videoHeight, ...avsep.state.info.frame]")
        scale = min(box["width"] / shown_w, box["height"] / shown_h)
        left = box["x"] + (box["width"] - shown_w * scale) / 2
        top = box["y"] + (box["height"] - shown_h * scale) / 2
        return left + x / frame_w * shown_w * scale, top + y / frame_h * shown_h * scale

    def click_frame(self, x: float, y: float) -> None:
        self.audio_requests.clear()
        self.page.mouse.click(*self.frame_to_page(x, y))

    def drag_frame(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.audio_requests.clear()
        self.page.mouse.move(*self.frame_to_page(x0, y0))
        self.page.mouse.down()
        self.page.mouse.move(*self.frame_to_page(x1, y1), steps=5)
        self.page.mouse.up()

    def choose_mode(self, mode: str) -> None:
        self.audio_requests.clear()
        self.page.check(f'input[name="mode"][value="{mode}"]')

    def received_audio(self, timeout_s: float = 60) -> tuple[int, np.ndarray, dict]:
        """Wait until the page has the sound up to the end of the video; returns (first sample,
        samples, the query of the latest answer): the joined WAV bodies of the current query."""
        deadline = time.monotonic() + timeout_s
        while True:
            answers = [r.response() for r in list(self.audio_requests)]
            current = [r for r in answers if r is not None and r.status == 200]
            if current:
                query = _query(current[-1].url)
                mine = [r for r in current if _same_query(_query(r.url), query)]
                ends = {int(r.headers["x-avsep-last"]) for r in mine}
                total = round(self.page.evaluate("avsep.state.info.duration * avsep.state.info.rate"))
                if max(ends) >= total - 1:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"the page did not receive the sound to the end in {timeout_s} s")
            self.page.wait_for_timeout(100)
        chunks = sorted(((int(r.headers["x-avsep-first"]), read_wav_bytes(r.body())) for r in mine), key=lambda c: c[0])
        first = chunks[0][0]
        audio = np.zeros(max(start + len(s) for start, s in chunks) - first, dtype=np.float32)
        for start, samples in chunks:
            audio[start - first:start - first + len(samples)] = samples
        return first, audio, query

    def metrics(self, cause: str = "click") -> list[dict]:
        """One entry per click (or other ``cause``: play, seek, mode): clickToAudioMs, requestMs,
        serverMs, query."""
        return [m for m in self.page.evaluate("avsep.metrics") if m["cause"] == cause]


def _query(url: str) -> dict:
    return {k: v[-1] for k, v in parse_qs(urlsplit(url).query).items()}


def _same_query(a: dict, b: dict) -> bool:
    return all(a.get(k) == b.get(k) for k in ("video", "region", "mode"))


def read_wav_bytes(data: bytes) -> np.ndarray:
    """Samples of a 16-bit mono WAV in memory, as floats."""
    with wave.open(io.BytesIO(data)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
