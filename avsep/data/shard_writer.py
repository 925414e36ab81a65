"""``avsep shard``: convert a preprocessed folder (index files, WAVs, frame folders) into tar shards.

Format: :mod:`avsep.data.shards`. One shard set per split (train, val, test), so the per-video
split of ``avsep preprocess`` is kept. Training videos are ordered by a seeded hash of their
identity, which interleaves labels, so any stretch of a shard mixes many labels (a streaming
shuffle buffer needs that); validation and test videos keep their index order, so validation
draws the same fixed mixtures from shards as from the folder.

Shards are filled in order up to ``--shard-size`` MB (a video larger than that gets a shard of
its own). Every shard is written under a temporary name and renamed when complete, then recorded
in ``shards.jsonl``. A rerun after a kill keeps the complete shards whose record matches what it
would write (same videos, same settings), and redoes the rest; tar headers carry no times or
owners, so the result is byte for byte that of a run that was never interrupted.
"""
from __future__ import annotations

import io
import json
import os
import re
import struct
import sys
import tarfile
import time
from hashlib import sha256
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from avsep.data.decode import load_audio
from avsep.data.index import IndexRow, frame_path, read_index
from avsep.data.mixtures import check_rows
from avsep.data.shards import BLOCK, FORMAT
from avsep.data.splits import SPLITS, row_video_id, unit_hash
from avsep.errors import AvsepError
from avsep.utils import Ledger, atomic_path, atomic_write_text, clean_partials, log

DEFAULT_SHARD_MB = 512.0
MB = 1_000_000
TAR_END = 2 * BLOCK + 20 * BLOCK  # the end-of-archive blocks plus, at most, the padding to a 10 KiB record


def member_bytes(size: int) -> int:
    """Bytes a member of ``size`` bytes takes in a tar: its header and its padded data."""
    return BLOCK + -(-size // BLOCK) * BLOCK


def sample_key(vid: str) -> str:
    """A tar key for a video id: ASCII, no dots (WebDataset splits a member name at the first
    dot), short enough for a plain ustar header; names that had to change get a hash suffix."""
    label, _, name = vid.partition("/")
    safe = [re.sub(r"[^A-Za-z0-9_-]", "_", part)[:36] for part in (label, name)]
    key = "/".join(safe)
    return key if key == vid else f"{key}~{sha256(vid.encode()).hexdigest()[:8]}"


def float_wav(audio: np.ndarray, sample_rate: int) -> bytes:
    """Mono float32 WAV bytes: exact samples for audio that was not a WAV file."""
    data = np.asarray(audio, "<f4").tobytes()
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 3, 1,
                       sample_rate, sample_rate * 4, 4, 32, b"data", len(data)) + data


class ShardEntry:
    """One index row to write: its members are read only when the shard that takes it is written."""

    def __init__(self, row: IndexRow, split: str, sample_rate: int, fps: float | None):
        self.row, self.id, self.key = row, row_video_id(row), sample_key(row_video_id(row))
        self.frames = [frame_path(row, i) for i in range(row.num_frames)]
        self.wav_size = row.audio.stat().st_size if row.audio.suffix.lower() == ".wav" else None
        meta = {"id": self.id, "label": row.label, "name": row.audio.stem, "num_frames": row.num_frames,
                "sample_rate": sample_rate, "fps": fps, "split": split}
        self.meta = json.dumps(meta, sort_keys=True).encode()
        self.sample_rate = sample_rate

    def size(self) -> int:
        """Its bytes in a shard (stat calls only, no reads)."""
        wav = self.wav_size if self.wav_size is not None else len(self.wav())
        return (member_bytes(len(self.meta)) + member_bytes(wav)
                + sum(member_bytes(p.stat().st_size) for p in self.frames))

    def wav(self) -> bytes:
        if self.row.audio.suffix.lower() == ".wav":
            return self.row.audio.read_bytes()
        return float_wav(load_audio(self.row.audio, self.sample_rate), self.sample_rate)

    def members(self) -> Iterator[tuple[str, bytes]]:
        yield f"{self.key}.json", self.meta
        yield f"{self.key}.wav", self.wav()
        for i, path in enumerate(self.frames):
            yield f"{self.key}.{i + 1:06d}.jpg", path.read_bytes()

    def fingerprint(self) -> list:
        return [self.id, self.row.num_frames, self.wav_size]


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = len(data), 0, 0o644, 0, 0, "", ""
    tar.addfile(info, io.BytesIO(data))


def write_shard(path: Path, videos: list[ShardEntry], limit: int) -> tuple[int, list[list]]:
    """Write videos from the start of ``videos`` into one shard of at most ``limit`` bytes
    (at least one video); returns how many it took and their manifest entries."""
    entries: list[list] = []
    used = 0
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            with tarfile.open(fileobj=f, mode="w", format=tarfile.USTAR_FORMAT) as tar:
                for video in videos:
                    size = video.size()
                    if entries and used + size + TAR_END > limit:
                        break
                    offset = tar.offset
                    for name, data in video.members():
                        _add(tar, name, data)
                    entries.append([video.key, video.row.label, video.row.audio.stem, video.row.num_frames,
                                    offset, tar.offset - offset])
                    used += size
            f.flush()
            os.fsync(f.fileno())
    return len(entries), entries


def _preprocess_params(data_dir: Path) -> dict:
    """The settings ``avsep preprocess`` used (sample_rate, fps...), if its ledger is there."""
    for record in Ledger(data_dir / "preprocess.jsonl").read()[:1]:
        return record.get("params") or {}
    return {}


def write_shards(data_dir: str | os.PathLike, shard_dir: str | os.PathLike, shard_mb: float = DEFAULT_SHARD_MB,
                 seed: int = 1234, sample_rate: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Convert every split of ``data_dir`` into shards in ``shard_dir``; returns a summary with,
    per split, videos, shards and bytes, and the file counts before and after.

    ``sample_rate`` (default: preprocess's, else 11025 Hz) is recorded in each sample's JSON and
    is the rate audio that is not WAV is decoded at; the frame rate comes from preprocess's ledger.
    """
    started = time.perf_counter()
    data_dir, shard_dir = Path(data_dir), Path(shard_dir)
    if not shard_mb > 0:
        raise AvsepError(f"--shard-size {shard_mb}: must be a positive number of MB")
    splits = [s for s in SPLITS if (data_dir / f"{s}.csv").is_file()]
    if not splits:
        raise AvsepError(f"{data_dir}: no train.csv, val.csv or test.csv (run `avsep preprocess` first)")
    shard_dir.mkdir(parents=True, exist_ok=True)
    clean_partials(shard_dir)  # shards a killed run was writing
    made_with = _preprocess_params(data_dir)
    fps, sample_rate = made_with.get("fps"), int(sample_rate or made_with.get("sample_rate") or 11025)
    ledger = Ledger(shard_dir / "shards.jsonl")
    done = ledger.latest("name")
    params = {"shard_mb": shard_mb, "seed": seed, "sample_rate": sample_rate}
    summary: dict[str, Any] = {"splits": {}, "source_files": len(splits), "shard_dir": str(shard_dir)}
    from tqdm import tqdm

    for split in splits:
        index = data_dir / f"{split}.csv"
        if not index.read_text(encoding="utf-8").strip():  # preprocess writes empty splits (--val-frac 0)
            log.info("%s is empty: no %s shards", index, split)
            _remove_stale(shard_dir, split, 0)
            (shard_dir / f"{split}.json").unlink(missing_ok=True)
            continue
        rows = check_rows(read_index(index), index)
        videos = [ShardEntry(row, split, sample_rate, fps) for row in rows]
        if split == "train":  # interleave labels: streams mix from stretches of shards
            videos.sort(key=lambda v: unit_hash(v.id, seed))
        summary["source_files"] += sum(1 + row.num_frames for row in rows)
        shards: list[dict] = []
        start = 0
        with tqdm(total=len(videos), desc=f"shard {split}", unit="video", file=sys.stderr, disable=not progress) as bar:
            while start < len(videos):
                name = f"{split}-{len(shards):06d}.tar"
                record = done.get(name)
                if not _still_valid(record, shard_dir / name, videos[start:], params):
                    count, entries = write_shard(shard_dir / name, videos[start:], int(shard_mb * MB))
                    record = {"name": name, "split": split, "params": params, "bytes": (shard_dir / name).stat().st_size,
                              "videos": [v.fingerprint() for v in videos[start:start + count]], "samples": entries}
                    ledger.append(**record)  # written last: the shard's done marker
                shards.append({"name": name, "bytes": record["bytes"], "samples": record["samples"]})
                start += len(record["samples"])
                bar.update(len(record["samples"]))
        _remove_stale(shard_dir, split, len(shards))
        manifest = {"format": FORMAT, "split": split, "videos": len(videos), "sample_rate": sample_rate, "fps": fps,
                    "labels": sorted({v.row.label for v in videos}), "shards": shards}
        atomic_write_text(shard_dir / f"{split}.json", json.dumps(manifest, separators=(",", ":")) + "\n")
        summary["splits"][split] = {"videos": len(videos), "shards": len(shards),
                                    "bytes": sum(s["bytes"] for s in shards)}
    summary["shard_files"] = sum(1 for p in shard_dir.iterdir() if p.is_file())
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def _still_valid(record: dict | None, path: Path, videos: list[ShardEntry], params: dict) -> bool:
    """Whether an earlier run's shard at ``path`` is complete and holds what this run would write."""
    if record is None or record.get("params") != params or not path.is_file():
        return False
    wanted = record.get("videos") or []
    return (path.stat().st_size == record.get("bytes") and len(wanted) <= len(videos)
            and [v.fingerprint() for v in videos[:len(wanted)]] == wanted)


def _remove_stale(shard_dir: Path, split: str, keep: int) -> None:
    """Shards numbered ``keep`` and above are left from an earlier conversion of other data."""
    for path in shard_dir.glob(f"{split}-*.tar"):
        number = path.stem.rpartition("-")[2]
        if number.isdigit() and int(number) >= keep:
            log.info("removing %s, left by an earlier conversion", path.name)
            path.unlink()


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"{split}: {s['videos']} videos in {s['shards']} shard(s), {s['bytes'] / MB:.1f} MB"
             for split, s in summary["splits"].items()]
    ratio = summary["source_files"] / max(1, summary["shard_files"])
    lines.append(f"files: {summary['source_files']} in the folder (index files, WAVs and frames) -> "
                 f"{summary['shard_files']} in {summary['shard_dir']} ({ratio:.0f}x fewer); {summary['seconds']:.1f} s")
    return "\n".join(lines)
