"""The app in a real headless Chromium (Playwright), with a trained model and a generated duet.

A click on each instrument must give the page sound whose SDR against that instrument's true
stem is clearly above the mixture's; so must a dragged box, "everything but the spot", and,
with the detect extra, a click on an object's box. A file that is not a video gets a message on
the page. Click-to-first-sound times are reported (the 300 ms target is checked by
benchmarks/bench_app.py, not here). A screenshot and the figures are kept in
``$AVSEP_TEST_ARTIFACTS`` (default: a pytest temporary folder).

Needs ``playwright`` (the test extra) and Chromium (``apt-get install chromium``).
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from avsep.app import App, AppOptions
from avsep.app.browser_testing import AppPage, chromium, chromium_path
from avsep.data.decode import load_audio
from avsep.evaluation.metrics import bss_eval_sources
from avsep.utils import atomic_path, atomic_write_text

pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install playwright")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(chromium_path() is None, reason="needs Chromium: apt-get install chromium")]
MARGIN_DB = 3.0            # "clearly above the mixture": at least this many dB better
LATENCY_BOUND_MS = 3000    # a generous bound for a loaded test machine; the target is 300 ms


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("AVSEP_TEST_ARTIFACTS") or tmp_path_factory.mktemp("app_artifacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def duet_folder(duet, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("duet_videos")
    shutil.copyfile(duet["video"], folder / "duet.mp4")
    return folder


def start_app(checkpoint, folder, tmp, detector):
    return App(AppOptions(checkpoint=checkpoint, videos=folder, port=0, device="cpu", detector=str(detector),
                          tmpdir=tmp)).start()


def centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def scores(first: int, audio: np.ndarray, duet: dict, label: str, rate: int) -> tuple[float, float]:
    """SDR of received audio against one instrument's true stem, and the mixture's, over the
    stretch received."""
    source = next(s for s in duet["sources"] if s["label"] == label)
    reference = load_audio(source["stem"], rate)[first:]
    mixture = load_audio(duet["mixture"], rate)[first:]
    n = min(len(reference), len(mixture), len(audio))
    assert n > 3 * rate, f"only {n / rate:.1f} s of sound to score"
    sdr = bss_eval_sources(reference[None, :n].astype(np.float64), audio[None, :n].astype(np.float64))[0][0]
    base = bss_eval_sources(reference[None, :n].astype(np.float64), mixture[None, :n].astype(np.float64))[0][0]
    return float(sdr), float(base)


def overlay_ink(page: AppPage) -> int:
    """The summed opacity of the canvas drawn over the video (heatmap, boxes, selection)."""
    return page.page.evaluate("""(() => {
        const canvas = document.getElementById("overlay");
        const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let ink = 0;
        for (let i = 3; i < pixels.length; i += 4) ink += pixels[i];
        return ink;
    })()""")


def wait_for_ink(page: AppPage, wanted, what: str, timeout_s: float = 10.0) -> None:
    """Poll :func:`overlay_ink` (the overlay is redrawn every animation frame) until ``wanted``."""
    deadline = time.monotonic() + timeout_s
    while not wanted(ink := overlay_ink(page)):
        assert time.monotonic() < deadline, f"no {what} after {timeout_s} s (ink {ink})"
        page.page.wait_for_timeout(50)


def test_click_to_separate_in_a_real_browser(browser, trained_separator_checkpoint, duet, duet_folder, tmp_path,
                                             artifacts):
    app = start_app(trained_separator_checkpoint, duet_folder, tmp_path, tmp_path / "no-such-weights.pt")
    try:
        page = AppPage(browser, app.url)
        info = page.open("duet.mp4")
        rate = info["rate"]
        boxes = {s["label"]: s["box"] for s in duet["sources"]}
        assert "no object boxes" in page.page.text_content("#objects-note")   # no weights: said, no crash
        # the heatmap toggle: the overlay holds the heatmap when it is on, nothing when it is off
        wait_for_ink(page, lambda ink: ink > 0, "the heatmap on the overlay")
        page.page.uncheck("#heatmap")
        wait_for_ink(page, lambda ink: ink == 0, "an empty overlay with the heatmap off")
        page.page.check("#heatmap")
        wait_for_ink(page, lambda ink: ink > 0, "the heatmap back on the overlay")
        report = {}
        short = []  # queries whose audio is not clearly above the mixture

        def check(what: str, label: str, region_kind: str) -> None:
            first, audio, query = page.received_audio()
            assert query["region"].startswith(region_kind), query
            sdr, base = scores(first, audio, duet, label, rate)
            report[what] = {"sdr": round(sdr, 2), "mixture_sdr": round(base, 2), "from_s": round(first / rate, 2),
                            "query": query["region"] + " " + query["mode"]}
            if not sdr > base + MARGIN_DB:
                short.append(what)

        # paused at the start: a click on the violin plays it
        x, y = centre(boxes["violin"])
        page.click_frame(x, y)
        check("violin (click, paused)", "violin", "point")
        got = [float(v) for v in page.received_audio()[2]["region"][len("point:"):].split(",")]
        assert abs(got[0] - x) <= 1.5 and abs(got[1] - y) <= 1.5, "the click maps to the frame's own pixels"
        # while it plays: the drum
        page.wait_until("!video.paused && video.currentTime > 0.3")
        page.click_frame(*centre(boxes["drum"]))
        check("drum (click, playing)", "drum", "point")
        # everything but the drum is the violin, still playing; from the start again, so that a
        # machine slowed by other work leaves more than 3 s of the 8 s clip to score. The seek is
        # marked as the page's own, as playFrom marks its rewinds, so that it asks for no sound in
        # the old mode that could arrive after the mode's change; the clip may have ended.
        page.page.evaluate("avsep.state.ownSeek = true; video.currentTime = 0; if (video.paused) video.play()")
        page.wait_until("!video.paused && video.currentTime < 1 && !avsep.state.ownSeek")
        page.choose_mode("residual")
        check("everything but the drum", "violin", "point")
        page.choose_mode("spot")
        page.page.evaluate("video.pause(); video.currentTime = 0")
        page.wait_until("video.readyState >= 2 && video.currentTime === 0")
        page.drag_frame(*boxes["violin"])
        check("violin (dragged box)", "violin", "box")
        # a download of the whole stem
        with page.page.expect_download() as download:
            page.page.click('#downloads button[data-mode="spot"]')
        saved = tmp_path / "spot.wav"
        download.value.save_as(saved)
        # the page's duration is rounded to milliseconds
        assert abs(len(load_audio(saved, rate)) - info["duration"] * rate) <= 0.0005 * rate + 2
        with atomic_path(artifacts / "app.png") as tmp:
            page.page.screenshot(path=str(tmp), type="png")  # the .part name says no type
        latencies = [round(m["clickToAudioMs"], 1) for m in page.metrics()]
        report["click_to_first_sound_ms"] = latencies

        # a file that is not a video: a message on the page, and the app goes on
        page.page.set_input_files("#upload", files=[{"name": "notes.txt", "mimeType": "video/mp4",
                                                      "buffer": b"these are notes, not a video"}])
        page.page.wait_for_selector("#message.error:not([hidden])")
        assert "notes.txt is not a video" in page.page.text_content("#message")
        page.open("duet.mp4")
        page.click_frame(*centre(boxes["violin"]))
        page.received_audio()
        assert not page.errors, page.errors
        assert not page.offsite, f"the page asked for other hosts: {page.offsite}"
    finally:
        app.close()
    atomic_write_text(artifacts / "browser_test.json", json.dumps(report, indent=1))
    print("\n" + json.dumps(report, indent=1))
    assert max(latencies) < LATENCY_BOUND_MS, latencies
    # The page must deliver separated sound: every click, box and residual clearly beats the mixture.
    assert not short, f"not clearly above the mixture: {', '.join(short)}: {report}"


@pytest.fixture(scope="module")
def tiny_detector_weights():
    pytest.importorskip("ultralytics", reason="needs the detect extra: pip install 'avsep[detect]'")
    from avsep.inference.detector_testing import cached_tiny_yolo

    return cached_tiny_yolo()


def test_clicking_an_objects_box_plays_its_tracked_stem(browser, trained_separator_checkpoint, duet, duet_folder,
                                                       tmp_path, tiny_detector_weights):
    app = start_app(trained_separator_checkpoint, duet_folder, tmp_path, tiny_detector_weights)
    try:
        page = AppPage(browser, app.url)
        info = page.open("duet.mp4")
        classes = {o["class"] for o in info["objects"]}
        # The tiny test detector is trained on generated scenes like this one (detector_testing.py);
        # a recipe or ultralytics change that makes it miss a player must show here, not pass.
        assert {"Violin", "Drum"} <= classes, f"the tiny test detector found {sorted(classes) or 'nothing'}"
        violin = next(s for s in duet["sources"] if s["label"] == "violin")
        page.click_frame(*centre(violin["box"]))
        first, audio, query = page.received_audio()
        # The tracker may lose a player and give it a new id later (seen: a violin tracked as one
        # object for 6 s and another after); the click, at the video's start, takes a violin's.
        assert query["region"] in {f"track:{o['id']}" for o in info["objects"] if o["class"] == "Violin"}, query
        sdr, base = scores(first, audio, duet, "violin", info["rate"])
        print(f"\nviolin by its tracked box: SDR {sdr:.2f} dB, mixture {base:.2f} dB")
        assert sdr > base + MARGIN_DB
        assert not page.errors, page.errors
        assert not page.offsite, f"the page asked for other hosts: {page.offsite}"
    finally:
        app.close()
