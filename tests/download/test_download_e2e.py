"""End to end: download from the local server, `avsep preprocess` the result, then `avsep train` on it."""
from __future__ import annotations

import csv
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

try:  # tests/ may or may not be a package
    from tests.download.fake_youtube import FakeYouTube, Route, make_video
except ImportError:
    from .fake_youtube import FakeYouTube, Route, make_video

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
LABELS = {"violin": 440.0, "flute violin": 660.0, "cello": 220.0}  # a MUSIC duet label is a folder too
PER_LABEL = 3


def avsep(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avsep", *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


@pytest.mark.slow
def test_download_then_preprocess_then_train(tmp_path):
    videos = {label: [f"{'-' if k == 0 else ''}{label.split()[0][:4]}{k}vid" for k in range(PER_LABEL)]
              for label in LABELS}
    index = tmp_path / "music.json"
    index.write_text(json.dumps({"version": 1.0, "videos": videos}))
    out, pre, run = tmp_path / "videos", tmp_path / "pre", tmp_path / "run"

    with FakeYouTube(lifetime=240) as server:
        for label, tone in LABELS.items():
            for k, name in enumerate(videos[label]):
                # 8 s each: more than one 65535-sample clip at 11025 Hz, so preprocess keeps them all.
                data = make_video(tmp_path / f"{name}.mp4", seconds=8, tone=tone * (1 + 0.05 * k)).read_bytes()
                server.add(f"{name}.mp4", Route(data, fail=[(429, {"Retry-After": "0"})] if k == 1 else []))
        result = avsep("download", "music", str(index), str(out), "--url-template", server.template,
                       "--workers", "3", "--backoff", "0.05", "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "done" in result.stdout and len(list(out.glob("*/*.mp4"))) == len(LABELS) * PER_LABEL

    result = avsep("preprocess", str(out), str(pre), "--workers", "2", "--no-progress")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {split: list(csv.reader(open(pre / f"{split}.csv", newline=""))) for split in ("train", "val", "test")}
    assert sum(len(r) for r in rows.values()) == len(LABELS) * PER_LABEL
    assert rows["train"] and rows["val"] and rows["test"]
    for row in (r for split in rows.values() for r in split):
        audio, frames, num_frames, label = row
        assert label in LABELS and int(num_frames) >= 48  # 6 s at 8 fps
        assert (pre / audio).is_file() and (pre / frames).is_dir()

    if importlib.util.find_spec("avsep.training.trainer") is None:
        pytest.skip("avsep.train is not written yet")
    result = avsep("train", "--data", str(pre), "--out", str(run), "--preset", "small", "--max-minutes", "0.2",
                   "--device", "cpu")
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(run.glob("*.pt"))
