"""Shared fixtures: a tiny preprocessed dataset written directly (no video decoding), and a model
trained on generated videos.

``trained_separator_checkpoint`` trains a small model on generated solo videos once per machine
and keeps it, with its ``log.csv``, in avsep's cache (``$AVSEP_CACHE_DIR`` or ``~/.cache/avsep``,
under ``test_models/``); set ``AVSEP_TEST_CHECKPOINT`` to use a checkpoint of your own instead.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from avsep.data.decode import write_wav
from avsep.data.index import IndexRow, write_index

REPO = Path(__file__).resolve().parents[1]
# Subprocesses must find this checkout and stay offline.
os.environ.setdefault("PYTHONPATH", str(REPO))
PYTHON = sys.executable


def write_tiny_dataset(root: Path, labels=("low", "mid", "high"), per_label=6, seconds=7.0, sample_rate=11025):
    """Tones of a label-specific pitch, with frames of a label-specific colour: (root, rows).

    Each label's videos are split 3 / 1 / 2 into disjoint train, val and test index files.
    """
    rng = np.random.default_rng(0)
    rows = {"train": [], "val": [], "test": []}
    colours = {label: tuple(int(c) for c in rng.integers(0, 255, 3)) for label in labels}
    for k, label in enumerate(labels):
        for v in range(per_label):
            name = f"{label}{v}"
            t = np.arange(int(seconds * sample_rate)) / sample_rate
            audio = 0.3 * np.sin(2 * np.pi * 220 * (k + 1) * (1 + 0.05 * v) * t) * (1 + 0.5 * np.sin(2 * np.pi * t))
            audio_path = root / "audio" / label / f"{name}.wav"
            write_wav(audio_path, audio.astype(np.float32), sample_rate)
            frames_dir = root / "frames" / label / name
            frames_dir.mkdir(parents=True)
            num_frames = int(seconds * 8)
            for i in range(num_frames):
                Image.new("RGB", (340, 256), colours[label]).save(frames_dir / f"{i + 1:06d}.jpg")
            split = "train" if v < per_label // 2 else "val" if v == per_label // 2 else "test"
            rows[split].append(IndexRow(audio_path, frames_dir, num_frames, label))
    for split, split_rows in rows.items():
        write_index(root / f"{split}.csv", split_rows, relative_to=root)
    return rows


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    write_tiny_dataset(root)
    return root


# The trained model of the browser test, as `avsep generate solo OUT --labels violin drum
# --per-label 10`, `avsep preprocess OUT DATA` and `avsep train --data DATA --preset small
# --max-steps 1500 --set ema_decay=0 --set eq_db=0 --set visual_norm=none --set crop_scale=1
# --set color_jitter=0` make it (about 13 minutes on 2 free cores).
# Two instruments, because the test is about the app, not about how far a small model generalises.
# Raw weights, not the preset's moving average: on this data draw the average's checkpoints chose
# the wrong player on the test's held-out videos (-2.2 dB SDR), the raw weights' beat the mixture
# (0.12 dB) on them at every validation step (5.2 to 17.8 dB). No random equalisation: the
# preset gained it after this recipe was measured, and the recipe keeps the measured model; so
# too the visual normalisation, crops and colour jitter the preset gained later.
# On 12 held-out videos instead of the test's 6 this model swaps the players (-5.6 dB): it shows
# that the pipeline separates, not that a model this small transfers (docs/training.md, "The test
# suite's model"; issue 7). Its 2 validation videos make preprocess warn.
RECIPE = {"labels": ["violin", "drum"], "per_label": 10, "seconds": 8.0, "seed": 0, "preset": "small",
          "set": ["ema_decay=0", "eq_db=0", "visual_norm=none", "crop_scale=1", "color_jitter=0"],
          "max_steps": 1500, "version": 3}


@pytest.fixture(scope="session")
def trained_separator_checkpoint(tmp_path_factory) -> Path:
    """A model trained on generated violin and drum solo videos (see RECIPE), cached per machine."""
    if os.environ.get("AVSEP_TEST_CHECKPOINT"):
        return Path(os.environ["AVSEP_TEST_CHECKPOINT"])
    from avsep.inference.detector import cache_dir

    # The resolved configuration is part of the key: a change to the preset trains a new model.
    key = hashlib.sha1(json.dumps({**RECIPE, "config": recipe_config().to_dict()}, sort_keys=True).encode())
    key = key.hexdigest()[:12]
    cached = cache_dir() / "test_models" / f"separator-{key}" / "best.pt"
    if cached.is_file() and (cached.parent / "log.csv").is_file():  # older caches kept no log.csv
        return cached
    work = tmp_path_factory.mktemp("trained")
    best = train_separator(work)
    cached.parent.mkdir(parents=True, exist_ok=True)
    for source, target in ((best.parent / "log.csv", cached.parent / "log.csv"), (best, cached)):  # best.pt last
        shutil.copyfile(source, target.with_suffix(".part"))
        target.with_suffix(".part").replace(target)
    return cached


def recipe_config():
    from avsep.config import Config

    return Config.preset(RECIPE["preset"]).with_overrides(RECIPE["set"])


def train_separator(work: Path) -> Path:
    """Generate solo videos, preprocess them and train a model by RECIPE; returns best.pt."""
    from avsep.config import RunSettings
    from avsep.data.preprocess import preprocess
    from avsep.synth import make_solo_collection
    from avsep.training.trainer import Trainer

    make_solo_collection(work / "videos", labels=RECIPE["labels"], videos_per_label=RECIPE["per_label"],
                         seconds=RECIPE["seconds"], seed=RECIPE["seed"], workers=os.cpu_count() or 1, pool="train")
    preprocess(work / "videos", work / "data", workers=os.cpu_count() or 1)
    Trainer(recipe_config(), work / "data" / "train.csv", work / "data" / "val.csv", work / "run",
            RunSettings(max_steps=RECIPE["max_steps"])).fit()
    return work / "run" / "best.pt"
