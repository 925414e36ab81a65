"""Turn a folder of videos into audio, frames and index files for training.

Input: ``SRC/<label>/<name>.<ext>`` (mp4, webm, mkv, mov, avi, ...). Output, in ``OUT``::

    audio/<label>/<name>.wav             mono 16-bit WAV at --sample-rate (11025 Hz)
    frames/<label>/<name>/000001.jpg ... frames at --fps (8), shorter side --frame-size (256)
    train.csv, val.csv, test.csv         index files (paths relative to OUT)
    preprocess.jsonl                     one record per video: ok, skipped (and why) or failed

Files without audio or video, undecodable, silent or shorter than one clip are skipped and
the run goes on. The run is resumable: a rerun redoes only videos without a finished record
whose outputs are still there. The split is by video and never moves: each video's place
depends only on the seed, its label and its name (:mod:`avsep.data.splits`), so adding videos
later never moves a training video into test.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from avsep.data.decode import load_audio, probe, read_frames, write_wav
from avsep.errors import AvsepError
from avsep.data.index import IndexRow, write_index
from avsep.data.splits import SPLITS, assign_splits
from avsep.utils import Ledger, clean_partials, log

VIDEO_EXTENSIONS = {".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v", ".flv", ".mpg", ".mpeg",
                    ".ts", ".3gp", ".ogv", ".wmv"}
SILENCE_PEAK = 1e-4          # audio whose peak is below this carries no sound to separate
JPEG_QUALITY = 90
DEFAULT_MIN_SECONDS = 65535 / 11025  # one clip of the paper's configuration


@dataclass(frozen=True)
class Settings:
    """What the outputs depend on; a video done with other settings is redone."""
    sample_rate: int = 11025
    fps: float = 8.0
    frame_size: int = 256
    min_seconds: float = DEFAULT_MIN_SECONDS


@dataclass(frozen=True)
class Video:
    source: Path
    label: str
    name: str

    @property
    def id(self) -> str:
        return f"{self.label}/{self.name}"


# --- finding videos -------------------------------------------------------------------------

def find_videos(src: Path) -> List[Video]:
    """Videos laid out as ``src/<label>/<name>.<ext>``, sorted by id; other files are ignored."""
    if not src.is_dir():
        raise AvsepError(f"{src}: source folder not found")
    videos: Dict[str, Video] = {}
    for label_dir in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for file in sorted(label_dir.iterdir()):
            if not file.is_file() or file.name.startswith(".") or file.suffix.lower() not in VIDEO_EXTENSIONS:
                continue
            video = Video(file, label_dir.name, file.stem)
            if video.id in videos:
                log.warning("%s: ignored, %s has the same name", file, videos[video.id].source.name)
                continue
            videos[video.id] = video
    if not videos:
        raise AvsepError(f"{src}: no videos found (expected {src}/<label>/<name>.mp4 and similar)")
    return list(videos.values())


# --- one video ------------------------------------------------------------------------------

def _outputs(out: Path, video: Video) -> Tuple[Path, Path]:
    return out / "audio" / video.label / f"{video.name}.wav", out / "frames" / video.label / video.name


class _Skip(Exception):
    """A file that cannot be used: recorded as skipped with this reason."""


def _check_media(video: Video, settings: Settings) -> np.ndarray:
    """Decode and check the audio; returns it, shape ``(num_samples,)``, or raises _Skip."""
    try:
        info = probe(video.source)
        if not info["has_audio"]:
            raise _Skip("no audio stream")
        if not info["has_video"]:
            raise _Skip("no video stream")
        audio = load_audio(video.source, settings.sample_rate)
    except AvsepError as err:
        # Decoding errors start with the file name, which the ledger record already has.
        raise _Skip(str(err).replace(f"{video.source}: ", "", 1)) from None
    min_samples = math.ceil(settings.min_seconds * settings.sample_rate - 1e-6)
    if len(audio) < min_samples:
        raise _Skip(f"too short: {len(audio) / settings.sample_rate:.2f} s < {settings.min_seconds:.2f} s")
    peak = float(np.abs(audio).max())
    if peak < SILENCE_PEAK:
        raise _Skip(f"silent audio: peak {peak:.1e}")
    return audio


def _write_frames(video: Video, frames_dir: Path, settings: Settings) -> int:
    """Write the frames into a hidden temporary folder, then rename it onto ``frames_dir``."""
    frames_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{video.name}.", suffix=".part", dir=frames_dir.parent))
    try:
        count = 0
        try:
            for count, image in enumerate(read_frames(video.source, settings.fps, settings.frame_size), start=1):
                image.save(tmp / f"{count:06d}.jpg", "JPEG", quality=JPEG_QUALITY)
        except AvsepError as err:
            raise _Skip(str(err).replace(f"{video.source}: ", "", 1)) from None
        if count < int(settings.min_seconds * settings.fps):
            raise _Skip(f"video too short: {count} frames < {settings.min_seconds:.2f} s at {settings.fps:g} fps")
        if frames_dir.exists():  # left by an earlier run that did not finish this video
            shutil.rmtree(frames_dir)
        os.replace(tmp, frames_dir)
        return count
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def process_video(video: Video, out: Path, settings: Settings) -> Dict[str, Any]:
    """Decode one video into its WAV file and frame folder; returns its ledger record.

    Never raises for a bad file: the record says ``skipped`` (unusable file) or ``failed``
    (an unexpected error) with the reason.
    """
    started = time.perf_counter()
    record: Dict[str, Any] = dict(id=video.id, label=video.label, status="ok", reason="",
                                  seconds=0.0, num_frames=0, duration=None)
    try:
        audio = _check_media(video, settings)
        record["duration"] = round(len(audio) / settings.sample_rate, 3)
        wav_path, frames_dir = _outputs(out, video)
        record["num_frames"] = _write_frames(video, frames_dir, settings)
        write_wav(wav_path, audio, settings.sample_rate)  # last: its presence marks the outputs done
    except _Skip as skip:
        record.update(status="skipped", reason=str(skip), num_frames=0)
    except Exception as err:  # noqa: BLE001 - one bad file must not stop a run of thousands
        record.update(status="failed", reason=f"{type(err).__name__}: {err}", num_frames=0)
    record["seconds"] = round(time.perf_counter() - started, 3)
    return record


# --- running many ---------------------------------------------------------------------------

def run_jobs(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int) -> Iterator[Tuple[Any, Any, Optional[str]]]:
    """Yield ``(job, fn(job), None)`` as jobs finish, or ``(job, None, error)`` on failure.

    ``workers=1`` runs in this process. Otherwise jobs run in a pool of spawned processes, which
    is handed at most twice ``workers`` at a time (one queued behind each running). A worker that
    dies (a crash in a native decoder, the out-of-memory killer) takes the pool down and we cannot
    tell which job did it, so the jobs handed to the pool are rerun one process each, which pins
    the crash on the file that causes it, and the rest go on in a new pool.
    """
    if workers <= 1:
        for job in jobs:
            try:
                yield job, fn(job), None
            except Exception as err:  # noqa: BLE001
                yield job, None, f"{type(err).__name__}: {err}"
        return
    todo = list(jobs)
    while todo:
        lost, todo = yield from _run_pool(fn, todo, workers)
        if lost and not _workers_start():
            raise AvsepError("worker processes cannot start: from Python, call this under "
                             "`if __name__ == \"__main__\":` (workers are spawned), or use workers=1")
        for job in lost:
            crashed, _ = yield from _run_pool(fn, [job], 1)
            if crashed:
                yield job, None, "worker crashed (killed by a signal or out of memory)"


def _pool(workers: int) -> ProcessPoolExecutor:
    # spawn, not fork: with PyAV 18.1.1 a worker forked after this process had converted frames
    # inherited PyAV's scaler without its threads and hung for good (a test run did, for 50
    # minutes); a forked worker inherits any lock another thread holds, too.
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


def _run_pool(fn: Callable[[Any], Any], jobs: Sequence[Any], workers: int):
    """Run ``jobs`` in a pool, yielding results; returns the jobs handed to it when it broke,
    and those not handed to it yet."""
    waiting = collections.deque(jobs)
    pool = _pool(min(workers, len(jobs)))
    running: Dict[Any, Any] = {}
    try:
        while waiting or running:
            while waiting and len(running) < 2 * workers:
                job = waiting.popleft()
                running[pool.submit(fn, job)] = job
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            lost = []
            for future in done:
                job = running.pop(future)
                try:
                    yield job, future.result(), None
                except BrokenProcessPool:
                    lost.append(job)
                except Exception as err:  # noqa: BLE001 - e.g. an unpicklable result
                    yield job, None, f"{type(err).__name__}: {err}"
            if lost:  # a broken pool fails every job it was running
                return lost + list(running.values()), list(waiting)
        return [], []
    finally:
        # On Ctrl-C (or an early stop) do not start the jobs still queued.
        pool.shutdown(wait=True, cancel_futures=True)


def _alive() -> bool:
    return True


def _workers_start() -> bool:
    """Whether a spawned worker can run a job at all (it cannot where the caller's script
    starts pools at import, without a ``__main__`` guard: every job would look like a crash)."""
    pool = _pool(1)
    try:
        return pool.submit(_alive).result()
    except BrokenProcessPool:
        return False
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --- the whole run --------------------------------------------------------------------------

def _is_done(record: Optional[Dict[str, Any]], video: Video, out: Path, settings: Settings) -> bool:
    """Whether an earlier run finished ``video`` with these settings and its outputs remain."""
    if record is None or record.get("params") != asdict(settings):
        return False
    if record.get("source_size") != video.source.stat().st_size:  # the file was replaced
        return False
    if record.get("status") == "skipped":
        return True
    if record.get("status") != "ok":
        return False
    wav_path, frames_dir = _outputs(out, video)
    last_frame = frames_dir / f"{int(record.get('num_frames', 0)):06d}.jpg"
    return wav_path.is_file() and last_frame.is_file()


def _clean(out: Path) -> None:
    """Remove what runs killed mid-way left behind: partial files and frame folders."""
    clean_partials(out)
    for tmp in (out / "frames").glob("*/.*.part"):
        shutil.rmtree(tmp, ignore_errors=True)


def _write_indexes(out: Path, videos: List[Video], records: Dict[str, Dict[str, Any]],
                   seed: int, val_frac: float, test_frac: float) -> Dict[str, int]:
    ok = {v.id: v for v in videos if records.get(v.id, {}).get("status") == "ok"}
    splits = assign_splits(ok, seed, val_frac, test_frac)
    rows: Dict[str, List[IndexRow]] = {s: [] for s in SPLITS}
    for vid, video in ok.items():
        wav_path, frames_dir = _outputs(out, video)
        rows[splits[vid]].append(IndexRow(wav_path, frames_dir, int(records[vid]["num_frames"]), video.label))
    for split in SPLITS:
        write_index(out / f"{split}.csv", rows[split], relative_to=out)
    _warn_thin_splits(rows, val_frac, test_frac)
    return {split: len(rows[split]) for split in SPLITS}


# Fewer validation videos than this make best.pt a choice on noise: with two labels and one video
# a label, every validation pair mixes the same two videos, and its SDR swung by 20 dB between checks
# (measured on the test suite's earlier two-instrument model; docs/training.md, "The test suite's model").
MIN_VAL_VIDEOS = 8


def _warn_thin_splits(rows: Dict[str, List[IndexRow]], val_frac: float, test_frac: float) -> None:
    """Splits are drawn per video, so a small label can end up with no val or test video, and a
    small collection with too few validation videos to choose a checkpoint: say so."""
    if val_frac > 0 and 0 < len(rows["val"]) < MIN_VAL_VIDEOS:
        log.warning("only %d val video(s): best.pt is chosen on them, and so few make validation SDR "
                    "noise; add videos or raise --val-frac to about %d / (number of videos)", len(rows["val"]),
                    MIN_VAL_VIDEOS)
    wanted = [s for s, frac in (("val", val_frac), ("test", test_frac)) if frac > 0]
    labels = sorted({r.label for split_rows in rows.values() for r in split_rows})
    for split in wanted:
        missing = [label for label in labels if not any(r.label == label for r in rows[split])]
        if missing:
            log.warning("no %s video for %d label(s) (%s): their videos are few, and each video's split "
                        "depends only on its own name (see docs/protocol.md)", split, len(missing),
                        ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))


def preprocess(src: "str | os.PathLike[str]", out: "str | os.PathLike[str]", *, workers: int = 1,
               sample_rate: int = 11025, fps: float = 8.0, frame_size: int = 256, seed: int = 1234,
               val_frac: float = 0.1, test_frac: float = 0.1, min_seconds: Optional[float] = None,
               progress: bool = True) -> Dict[str, Any]:
    """Preprocess every video of ``src`` into ``out`` (see the module docstring); returns a summary.

    The summary has ``videos`` (found in src), ``processed`` (this run), ``already_done``,
    ``status`` (counts of ok/skipped/failed over all videos), ``reasons`` (``[reason, count]``
    pairs for skipped and failed videos, most common first), ``splits`` (rows per index file),
    ``out`` and ``seconds``.
    """
    started = time.perf_counter()
    src, out = Path(src), Path(out)
    settings = Settings(int(sample_rate), float(fps), int(frame_size),
                        float(DEFAULT_MIN_SECONDS if min_seconds is None else min_seconds))
    _validate(settings, workers, val_frac, test_frac)
    videos = find_videos(src)
    out.mkdir(parents=True, exist_ok=True)
    _clean(out)
    ledger = Ledger(out / "preprocess.jsonl")
    records = ledger.latest()
    todo = [v for v in videos if not _is_done(records.get(v.id), v, out, settings)]
    log.info("%d videos in %s, %d already done, %d to process", len(videos), src, len(videos) - len(todo), len(todo))

    from tqdm import tqdm  # only needed here; keeps `import avsep.data.preprocess` light
    work = functools.partial(process_video, out=out, settings=settings)
    with contextlib.closing(run_jobs(work, todo, workers)) as jobs, \
            tqdm(total=len(todo), desc="preprocess", unit="video", file=sys.stderr, disable=not progress) as bar:
        for video, record, error in jobs:
            if record is None:
                record = dict(id=video.id, label=video.label, status="failed", reason=error,
                              seconds=0.0, num_frames=0, duration=None)
            record.update(source=video.source.relative_to(src).as_posix(),
                          source_size=video.source.stat().st_size, params=asdict(settings))
            ledger.append(**record)  # written last: the video's done marker
            records[video.id] = record
            bar.update(1)

    splits = _write_indexes(out, videos, records, seed, val_frac, test_frac)
    return _summary(videos, records, len(todo), splits, out, time.perf_counter() - started)


def _validate(settings: Settings, workers: int, val_frac: float, test_frac: float) -> None:
    if settings.sample_rate <= 0 or settings.fps <= 0 or settings.frame_size <= 0:
        raise AvsepError("--sample-rate, --fps and --frame-size must be positive")
    if settings.min_seconds <= 0:
        raise AvsepError(f"--min-seconds must be positive, got {settings.min_seconds}")
    if workers < 1:
        raise AvsepError(f"--workers must be at least 1, got {workers}")
    if not (0 <= val_frac < 1 and 0 <= test_frac < 1 and val_frac + test_frac < 1):
        raise AvsepError(f"--val-frac and --test-frac must be in [0, 1) with a sum below 1, "
                         f"got {val_frac} and {test_frac}")


def _summary(videos: List[Video], records: Dict[str, Dict[str, Any]], processed: int,
             splits: Dict[str, int], out: Path, seconds: float) -> Dict[str, Any]:
    current = [records[v.id] for v in videos if v.id in records]
    status = collections.Counter(r.get("status", "failed") for r in current)
    # Group reasons by their kind ("too short: 2.00 s < 5.94 s" -> "too short").
    reasons = collections.Counter(str(r.get("reason") or "unknown").split(":", 1)[0]
                                  for r in current if r.get("status") != "ok")
    return {"videos": len(videos), "processed": processed, "already_done": len(videos) - processed,
            "status": {s: status.get(s, 0) for s in ("ok", "skipped", "failed")},
            "reasons": [[reason, count] for reason, count in reasons.most_common()],
            "splits": splits, "out": str(out), "seconds": round(seconds, 2)}


def format_summary(summary: Dict[str, Any], top: int = 5) -> str:
    """The summary as a few lines of text."""
    s = summary["status"]
    lines = [f"{summary['videos']} videos: {s['ok']} ok, {s['skipped']} skipped, {s['failed']} failed "
             f"({summary['processed']} processed now, {summary['already_done']} already done, "
             f"{summary['seconds']:.1f} s)"]
    if summary["reasons"]:
        lines.append("not used: " + ", ".join(f"{reason} ({count})" for reason, count in summary["reasons"][:top]))
    lines.append("index rows: " + ", ".join(f"{split}.csv {n}" for split, n in summary["splits"].items())
                 + f"  (in {summary['out']})")
    return "\n".join(lines)
