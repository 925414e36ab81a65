"""``avsep preprocess``: outputs, bad files, the split, resuming, crashes and the CLI."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from avsep.data.decode import read_frames, read_wav, wav_info
from avsep.errors import AvsepError
from avsep.data.index import read_index
from avsep.data.preprocess import preprocess, run_jobs
from avsep.data.splits import assign_split

GOOD = {"guitar": ["g1", "g2", "g3", "g4"], "piano": ["p1", "p2", "p3"], "violin": ["v1"]}
BAD = {"piano/corrupt": "cannot decode", "piano/silent": "silent audio",
       "violin/noaudio": "no audio stream", "violin/short": "too short"}
# Small settings keep the test fast: 2 s videos, 1.5 s clips, 96-pixel frames.
OPTIONS = dict(min_seconds=1.5, frame_size=96, progress=False)


def make_video(path: Path, seconds: float = 2.0, fps: int = 24, amplitude: float = 0.3,
               audio: bool = True, tone: float = 440.0) -> None:
    """A 160x120 H.264 video with a mono AAC tone."""
    container = av.open(str(path), "w")
    vstream = container.add_stream("libx264", rate=fps)
    vstream.width, vstream.height, vstream.pix_fmt = 160, 120, "yuv420p"
    if audio:
        astream = container.add_stream("aac", rate=22050)
        astream.layout = "mono"
    for i in range(int(seconds * fps)):
        image = np.zeros((120, 160, 3), np.uint8)
        image[:, : (i * 4) % 160] = (200, 100, 50)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = i
        container.mux(vstream.encode(frame))
    container.mux(vstream.encode())
    if audio:
        t = np.arange(int(seconds * 22050)) / 22050
        samples = (amplitude * np.sin(2 * np.pi * tone * t)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts = 22050, start
            container.mux(astream.encode(frame))
        container.mux(astream.encode())
    container.close()


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("src")
    for label, names in GOOD.items():
        (root / label).mkdir()
        for i, name in enumerate(names):
            make_video(root / label / f"{name}.mp4", tone=220.0 * (i + 1))
    (root / "piano/corrupt.mp4").write_bytes(np.random.default_rng(0).bytes(30000))
    make_video(root / "piano/silent.mp4", amplitude=0.0)
    make_video(root / "violin/noaudio.mp4", audio=False)
    make_video(root / "violin/short.mp4", seconds=0.8)
    # Not videos: ignored.
    (root / "guitar/g1.info.json").write_text("{}")
    (root / "guitar/g9.mp4.part").write_bytes(b"partial download")
    (root / "piano/list.jsonl").write_text("")
    return root


@pytest.fixture(scope="module")
def first_run(src, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    return out, preprocess(src, out, workers=2, **OPTIONS)


def _rows(index: Path) -> list:
    """The rows of an index file; a split can be empty with so few videos."""
    return read_index(index) if index.read_text().strip() else []


def _ledger(out: Path) -> list:
    return [json.loads(line) for line in (out / "preprocess.jsonl").read_text().splitlines()]


def test_good_videos_become_wav_frames_and_index_rows(first_run):
    out, summary = first_run
    assert summary["videos"] == 12
    assert summary["status"] == {"ok": 8, "skipped": 4, "failed": 0}
    rate, samples = wav_info(out / "audio/guitar/g1.wav")
    assert rate == 11025 and abs(samples - 2 * 11025) < 600
    assert np.abs(read_wav(out / "audio/guitar/g1.wav")).max() > 0.2
    frames = sorted((out / "frames/guitar/g1").iterdir())
    assert [f.name for f in frames[:2]] == ["000001.jpg", "000002.jpg"] and abs(len(frames) - 16) <= 1
    with Image.open(frames[0]) as image:
        assert image.size == (128, 96) and image.mode == "RGB"
    rows = [row for split in ("train", "val", "test") for row in _rows(out / f"{split}.csv")]
    assert sorted(f"{r.label}/{r.audio.stem}" for r in rows) == sorted(
        f"{label}/{name}" for label, names in GOOD.items() for name in names)
    assert all(r.audio.is_file() and r.num_frames == len(list(r.frames.glob("*.jpg"))) for r in rows)
    assert "audio/" in (out / "train.csv").read_text() and str(out) not in (out / "train.csv").read_text()


def test_bad_files_are_skipped_with_their_reason(first_run):
    out, summary = first_run
    records = {r["id"]: r for r in _ledger(out)}
    assert len(records) == 12  # non-video files are not even looked at
    for vid, reason in BAD.items():
        assert records[vid]["status"] == "skipped" and records[vid]["reason"].startswith(reason), records[vid]
        assert not (out / "audio" / f"{vid}.wav").exists() and not (out / "frames" / vid).exists()
    good = records["guitar/g1"]
    assert {"id", "label", "status", "reason", "seconds", "num_frames", "duration"} <= set(good)
    assert good["status"] == "ok" and good["label"] == "guitar" and good["duration"] == pytest.approx(2, abs=0.1)
    assert sorted(reason for reason, _ in summary["reasons"]) == sorted(BAD.values())
    assert not list(out.rglob(".*.part"))


def test_split_follows_each_videos_identity(first_run):
    out, summary = first_run
    assert sum(summary["splits"].values()) == 8
    for split in ("train", "val", "test"):
        for row in _rows(out / f"{split}.csv"):
            assert assign_split(f"{row.label}/{row.audio.stem}", 1234, 0.1, 0.1) == split


def test_rerun_skips_finished_videos_and_redoes_deleted_outputs(src, tmp_path):
    small = tmp_path / "src"
    for vid in ("guitar/g1", "guitar/g2", "piano/corrupt"):
        (small / vid).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / f"{vid}.mp4", small / f"{vid}.mp4")
    out = tmp_path / "out"
    assert preprocess(small, out, **OPTIONS)["processed"] == 3
    again = preprocess(small, out, **OPTIONS)
    assert again["processed"] == 0 and again["already_done"] == 3 and len(_ledger(out)) == 3
    # A deleted output, and leftovers of a run killed mid-way, are handled by the next run.
    (out / "audio/guitar/g2.wav").unlink()
    (out / "frames/guitar/.g1.x1y2.part").mkdir()
    (out / "audio/guitar/.g1.wav.abc.wav.part").write_bytes(b"")
    redo = preprocess(small, out, **OPTIONS)
    assert redo["processed"] == 1 and _ledger(out)[-1]["id"] == "guitar/g2"
    assert (out / "audio/guitar/g2.wav").is_file() and not list(out.rglob(".*.part"))
    shutil.rmtree(out / "frames/guitar/g1")
    assert preprocess(small, out, **OPTIONS)["processed"] == 1 and _ledger(out)[-1]["id"] == "guitar/g1"
    # Other settings make other outputs: everything is redone.
    assert preprocess(small, out, **{**OPTIONS, "frame_size": 64})["processed"] == 3


def _double_or_crash(x: int) -> int:
    if x == 3:
        os._exit(1)  # a hard crash, as a segfault in a native decoder would be
    if x == 5:
        raise RuntimeError("plain error")
    return 2 * x


def test_a_worker_crash_does_not_stop_the_run():
    results = {job: (value, error) for job, value, error in run_jobs(_double_or_crash, list(range(8)), workers=2)}
    assert sorted(results) == list(range(8))
    assert results[3][0] is None and "crashed" in results[3][1]
    assert results[5] == (None, "RuntimeError: plain error")
    assert all(results[i] == (2 * i, None) for i in (0, 1, 2, 4, 6, 7))


@pytest.mark.timeout(300)
def test_a_run_after_this_process_decoded_frames(src, tmp_path):
    # Workers are spawned, not forked: a worker forked from a process that had already decoded
    # frames (a test run, an app) hung for good in PyAV 18.1.1's scaler (tests/data/test_decode.py).
    next(read_frames(src / "guitar/g1.mp4", fps=2, short_side=64))
    small = tmp_path / "src"
    for vid in ("guitar/g2", "guitar/g3", "piano/p1"):
        (small / vid).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / f"{vid}.mp4", small / f"{vid}.mp4")
    summary = preprocess(small, tmp_path / "out", workers=2, **OPTIONS)
    assert summary["status"] == {"ok": 3, "skipped": 0, "failed": 0}


WHERE = "as imported"


def _where(_: int) -> str:
    return WHERE


def test_workers_are_spawned_not_forked(monkeypatch):
    # A forked worker would see this process's change; a spawned one imports the module afresh.
    monkeypatch.setattr(sys.modules[__name__], "WHERE", "changed in this process")
    assert {value for _, value, _ in run_jobs(_where, list(range(6)), workers=2)} == {"as imported"}


@pytest.mark.timeout(300)
def test_a_script_without_a_main_guard_is_told_so(src, tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text("from avsep.data.preprocess import preprocess\n"
                      f"preprocess({str(src)!r}, {str(tmp_path / 'out')!r}, workers=2, progress=False)\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert run.returncode != 0
    assert "worker processes cannot start" in run.stderr.strip().splitlines()[-1]


def test_bad_arguments(src, tmp_path):
    with pytest.raises(AvsepError, match="source folder not found"):
        preprocess(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty/label").mkdir(parents=True)
    (tmp_path / "empty/label/notes.json").write_text("{}")
    with pytest.raises(AvsepError, match="no videos found"):
        preprocess(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(AvsepError, match="--val-frac"):
        preprocess(src, tmp_path / "out", val_frac=0.6, test_frac=0.5)


def _cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m avsep ARGS``.

    While another subcommand's module is missing or unfinished (building the parser imports
    them all), the same ``cli.main`` runs with only the preprocess subcommand.
    """
    run = subprocess.run([sys.executable, "-m", "avsep", *args], capture_output=True, text=True, timeout=120)
    if "in build_parser" in run.stderr and "preprocess" not in run.stderr:
        code = ("import sys; from avsep import cli; "
                "cli.COMMANDS = {'preprocess': cli.COMMANDS['preprocess']}; sys.exit(cli.main())")
        run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    return run


def test_cli(src, tmp_path):
    small = tmp_path / "src"
    shutil.copytree(src / "violin", small / "violin")
    out = tmp_path / "out"
    run = _cli("preprocess", str(small), str(out), "--workers", "1", "--min-seconds", "1.5", "--frame-size", "64")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert "3 videos: 1 ok, 2 skipped, 0 failed" in run.stdout
    assert "no audio stream (1)" in run.stdout and "train.csv 1" in run.stdout
    assert read_index(out / "train.csv")[0].label == "violin"

    missing = _cli("preprocess", str(tmp_path / "nowhere"), str(out))
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"avsep: error: {tmp_path / 'nowhere'}: source folder not found"


def test_too_few_validation_videos_are_flagged(caplog):
    from avsep.data.index import IndexRow
    from avsep.data.preprocess import MIN_VAL_VIDEOS, _warn_thin_splits

    def rows(n_val):
        make = lambda split, i: IndexRow(Path(f"{split}{i}.wav"), Path(f"{split}{i}"), 64, "violin")
        return {"train": [make("train", i) for i in range(20)], "val": [make("val", i) for i in range(n_val)],
                "test": [make("test", 0)]}

    with caplog.at_level("WARNING", logger="avsep"):
        _warn_thin_splits(rows(2), val_frac=0.1, test_frac=0.1)
    assert "only 2 val video(s)" in caplog.text and "--val-frac" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="avsep"):
        _warn_thin_splits(rows(MIN_VAL_VIDEOS), val_frac=0.1, test_frac=0.1)
        _warn_thin_splits(rows(0), val_frac=0.0, test_frac=0.1)  # no validation asked for
    assert "val video" not in caplog.text
