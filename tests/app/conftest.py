"""Fixtures of the app's tests: a tiny model and videos for the server tests, and a trained model
and a generated duet for the browser test.

``trained_separator_checkpoint`` trains a small model on generated solo videos once per machine
and keeps it in avsep's cache (``$AVSEP_CACHE_DIR`` or ``~/.cache/avsep``, under
``test_models/``); set ``AVSEP_TEST_CHECKPOINT`` to use a checkpoint of your own instead.
It belongs in tests/conftest.py once other tests need it.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from avsep.app import App, AppOptions
from tests.app.helpers import Client, tiny_checkpoint, two_tone_video

# The trained model of the browser test, as `avsep generate solo OUT --labels violin drum
# --per-label 10`, `avsep preprocess OUT DATA` and `avsep train --data DATA --preset small --set
# compose_prob=0.5 --set pixel_loss=1 --max-steps 1500` make it (about 10 minutes on 2 free cores).
# Two instruments, because the test is about the app, not about how far a small model generalises.
RECIPE = {"labels": ["violin", "drum"], "per_label": 10, "seconds": 8.0, "seed": 0, "preset": "small",
          "set": ["compose_prob=0.5", "pixel_loss=1"], "max_steps": 1500, "version": 1}
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
def trained_separator_checkpoint(tmp_path_factory) -> Path:
    """A model trained on generated violin and drum solo videos (see RECIPE), cached per machine."""
    if os.environ.get("AVSEP_TEST_CHECKPOINT"):
        return Path(os.environ["AVSEP_TEST_CHECKPOINT"])
    from avsep.inference.detector import cache_dir

    key = hashlib.sha1(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()[:12]
    cached = cache_dir() / "test_models" / f"separator-{key}" / "best.pt"
    if cached.is_file():
        return cached
    work = tmp_path_factory.mktemp("trained")
    best = train_separator(work)
    cached.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, cached.with_suffix(".part"))
    cached.with_suffix(".part").replace(cached)
    return cached


def train_separator(work: Path) -> Path:
    """Generate solo videos, preprocess them and train a model by RECIPE; returns best.pt."""
    from avsep.config import Config, RunSettings
    from avsep.data.preprocess import preprocess
    from avsep.synth import make_solo_collection
    from avsep.training.trainer import Trainer

    make_solo_collection(work / "videos", labels=RECIPE["labels"], videos_per_label=RECIPE["per_label"],
                         seconds=RECIPE["seconds"], seed=RECIPE["seed"], workers=os.cpu_count() or 1, pool="train")
    preprocess(work / "videos", work / "data", workers=os.cpu_count() or 1)
    cfg = Config.preset(RECIPE["preset"]).with_overrides(RECIPE["set"])
    Trainer(cfg, work / "data" / "train.csv", work / "data" / "val.csv", work / "run",
            RunSettings(max_steps=RECIPE["max_steps"])).fit()
    return work / "run" / "best.pt"


@pytest.fixture(scope="session")
def duet(tmp_path_factory) -> dict:
    """One generated violin and drum duet with its stems and boxes (see DUET)."""
    from avsep.synth import load_duets, make_duets

    out = tmp_path_factory.mktemp("duet")
    make_duets(out, pairs=[tuple(p) for p in DUET["pairs"]], count=1, seed=DUET["seed"], pool=DUET["pool"])
    return load_duets(out)[0]
