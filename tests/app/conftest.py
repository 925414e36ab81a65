"""Fixtures of the app's tests: a tiny model and videos for the server tests, and a trained model
and a generated duet for the browser test.

The trained model (``trained_separator_checkpoint``) is shared with tests/training and lives in
tests/conftest.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from avsep.app import App, AppOptions
from tests.app.helpers import Client, tiny_checkpoint, two_tone_video

# The duet the browser test clicks: a new violin and drum scene (seed 3) drawn from the training
# pools of backgrounds, soundfonts and melodies, with its two players at similar loudness (so that
# neither is already "separated" in the mixture) and a silent person between them. Held-out scenes
# (pool "test") measure generalisation instead: benchmarks/bench_generalization.py.
DUET = {"pairs": [["violin", "drum"]], "seed": 3, "pool": "train"}


@pytest.fixture(scope="session")
def tiny_app_checkpoint(tmp_path_factory) -> Path:
    return tiny_checkpoint(tmp_path_factory.mktemp("app_model") / "tiny.pt")


@pytest.fixture(scope="session")
def video_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("app_videos")
    two_tone_video(folder / "tones.mp4")
    (folder / "notes.txt").write_text("not a video")
    return folder


@pytest.fixture
def running_app(tiny_app_checkpoint, video_folder, tmp_path):
    """An app on a free port of 127.0.0.1, serving ``video_folder``, without object detection."""
    app = App(AppOptions(checkpoint=tiny_app_checkpoint, videos=video_folder, port=0, device="cpu", detect=False,
                         max_upload_mb=2, tmpdir=tmp_path)).start()
    app.client = Client(app.url)
    yield app
    app.close()


@pytest.fixture(scope="session")
def duet(tmp_path_factory) -> dict:
    """One generated violin and drum duet with its stems and boxes (see DUET)."""
    from avsep.synth import load_duets, make_duets

    out = tmp_path_factory.mktemp("duet")
    make_duets(out, pairs=[tuple(p) for p in DUET["pairs"]], count=1, seed=DUET["seed"], pool=DUET["pool"])
    return load_duets(out)[0]
