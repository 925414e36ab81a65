"""Tests for avsep.report: assets exist, WAVs decode, text is escaped."""
from __future__ import annotations

import re
import wave
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
from PIL import Image

from avsep.evaluation import report

SR = 11025
N = 4000
F, T = 64, 32


def _item(name: str, labels: list[str], seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    audio = [0.3 * rng.standard_normal(N).astype(np.float32) for _ in labels]
    mixture = np.sum(audio, axis=0)
    sources = []
    for label, gt in zip(labels, audio):
        sources.append({
            "label": label,
            "frames": [rng.integers(0, 255, (90, 120, 3), dtype=np.uint8),
                       Image.new("RGB", (320, 240), (10, 200, 30))],
            "gt_audio": gt, "pred_audio": gt * 0.9,
            "gt_mask": rng.uniform(0, 1, (F, T)), "pred_mask": rng.uniform(0, 1, (F, T)),
            "gt_mag": rng.uniform(0, 1, (F, T)), "pred_mag": rng.uniform(0, 1, (F, T)),
        })
    return {
        "name": name, "sample_rate": SR,
        "mixture": {"audio": mixture, "mag": rng.uniform(0, 1, (F, T))},
        "metrics": {label: {"SDR": 5.123, "SIR": float("nan"), "SAR": 9.0} for label in labels},
        "sources": sources,
    }


@pytest.fixture()
def written(tmp_path: Path) -> tuple[Path, str]:
    items = [_item("guitar + violin", ["guitar", "violin"]),
             _item("weird/name <b>", ["<script>alert(1)</script>", "flute"], seed=1)]
    rows = [{"system": "mixture", "SDR mean": -0.5, "SDR median": -0.4},
            {"system": "model", "SDR mean": 5.25, "SDR median": 4.75}]
    index = report.write_report(tmp_path / "rep", "Test <report> & co", rows, items)
    return index, index.read_text(encoding="utf-8")


def _refs(page: str) -> list[str]:
    return [unquote(u) for u in re.findall(r'src="([^"]+)"', page)]


def test_index_references_existing_files(written: tuple[Path, str]) -> None:
    index, page = written
    assert index.name == "index.html" and index.exists()
    refs = _refs(page)
    # Per item: mixture wav + png; per source: 2 frames, 2 wavs, 4 pngs.
    assert len(refs) == 2 * (2 + 2 * 8)
    for ref in refs:
        assert not ref.startswith("/") and ".." not in ref
        assert (index.parent / ref).is_file(), ref
    assert all(ref.startswith("assets/") for ref in refs)
    assert not list(index.parent.rglob("*.part"))


def test_assets_have_expected_formats(written: tuple[Path, str]) -> None:
    index, page = written
    refs = _refs(page)
    assert sum(r.endswith(".jpg") for r in refs) == 8
    for ref in refs:
        if ref.endswith(".jpg"):
            with Image.open(index.parent / ref) as img:
                assert img.format == "JPEG" and max(img.size) <= report.THUMB_SIZE[0]
        if ref.endswith(".png"):
            with Image.open(index.parent / ref) as img:
                assert img.format == "PNG" and img.size == (T, F)
    assert page.count("<audio controls") == 2 * 5


def test_wavs_decode_to_right_length_and_rate(written: tuple[Path, str]) -> None:
    index, page = written
    wavs = [r for r in _refs(page) if r.endswith(".wav")]
    assert len(wavs) == 10
    for ref in wavs:
        with wave.open(str(index.parent / ref), "rb") as wav:
            assert wav.getnchannels() == 1 and wav.getsampwidth() == 2
            assert wav.getframerate() == SR and wav.getnframes() == N


def test_text_is_escaped(written: tuple[Path, str]) -> None:
    _, page = written
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Test &lt;report&gt; &amp; co" in page
    assert "weird/name &lt;b&gt;" in page


def test_summary_table_and_metrics(written: tuple[Path, str]) -> None:
    _, page = written
    assert page.index("SDR median") < page.index('<section class="item">')
    assert "5.25" in page and "4.75" in page and "-0.50" in page
    assert "5.12" in page and "n/a" in page  # per-source metrics, nan shown as n/a


def test_missing_optional_fields(tmp_path: Path) -> None:
    item = {"name": "bare", "sample_rate": SR, "mixture": {"audio": np.zeros(10)},
            "sources": [{"label": "x", "pred_audio": np.zeros(10)}]}
    index = report.write_report(tmp_path, "t", [], [item])
    refs = _refs(index.read_text(encoding="utf-8"))
    assert len(refs) == 2 and all((tmp_path / r).is_file() for r in refs)
