"""Shared fixtures: a tiny preprocessed dataset written directly (no video decoding)."""
from __future__ import annotations

import os
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
