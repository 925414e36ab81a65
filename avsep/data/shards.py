"""Datasets as WebDataset-style tar shards: a few large files instead of millions of frame files.

``avsep shard DATA_DIR SHARD_DIR`` (:mod:`avsep.data.shard_writer`) writes, per split::

    SHARD_DIR/train-000000.tar, train-000001.tar, ...   tar shards of at most --shard-size MB
    SHARD_DIR/train.json                                 the manifest: every shard and its samples
    (the same for val and test) and shards.jsonl, the conversion's ledger

A sample is one preprocessed solo video: consecutive tar members that share a key (the
WebDataset convention, so ``tar x`` or the ``webdataset`` package read them too)::

    <key>.json          {"id", "label", "name", "num_frames", "sample_rate", "fps", "split"}
    <key>.wav           the video's WAV file, byte for byte
    <key>.000001.jpg    its frames, byte for byte (1-based, as in the frame folders)

The manifest records each sample's byte offset and length in its shard, so a sample is one
contiguous slice of its memory-mapped shard, reached directly (validation, resuming a stream).
:class:`MemoryVideo` serves a sample from memory through the :class:`~avsep.data.videos.SoloVideo`
protocol, so :class:`~avsep.data.mixtures.MixtureMaker` mixes it exactly as it mixes files.
"""
from __future__ import annotations

import io
import json
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from avsep.data.splits import video_id
from avsep.data.videos import read_frame
from avsep.errors import AvsepError

FORMAT = "avsep-shards-1"
BLOCK = 512  # tar's block size
# (WAV format tag, bits) -> (sample dtype, scale to [-1, 1]): what avsep.data.decode.read_wav reads.
WAV_DTYPES = {(1, 16): (np.dtype("<i2"), 1 / 32768), (3, 32): (np.dtype("<f4"), 1.0),
              (1, 32): (np.dtype("<i4"), 1 / 2147483648)}


@dataclass(frozen=True)
class SampleRef:
    """Where one video lies in a shard: ``size`` bytes from ``offset``, and what it is."""
    index: int          # position in its split's manifest
    shard: Path
    offset: int
    size: int
    key: str
    label: str
    name: str
    num_frames: int

    @property
    def video_id(self) -> str:
        return video_id(self.label, self.name)


@dataclass
class ShardSplit:
    """One split of a shard folder, read from its manifest (``SHARD_DIR/<split>.json``)."""
    manifest: Path
    split: str
    shards: list[Path]
    samples: list[SampleRef]

    @property
    def labels(self) -> list[str]:
        """The split's label names, sorted (item ``labels`` are indices into this list)."""
        return sorted({s.label for s in self.samples})

    def shard_samples(self) -> list[list[SampleRef]]:
        """The samples of each shard, in shard order."""
        by_shard: dict[Path, list[SampleRef]] = {path: [] for path in self.shards}
        for sample in self.samples:
            by_shard[sample.shard].append(sample)
        return list(by_shard.values())


def is_shard_manifest(path: Path) -> bool:
    """Whether ``path`` is a split manifest written by ``avsep shard``."""
    if Path(path).suffix != ".json" or not Path(path).is_file():
        return False
    try:
        return json.loads(Path(path).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_split(path: Path) -> ShardSplit:
    """Read a split manifest; raises :class:`AvsepError` naming the file if it is not one."""
    path = Path(path)
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise AvsepError(f"{path}: shard manifest not found (run `avsep shard DATA_DIR {path.parent}`)") from None
    except (OSError, ValueError) as err:
        raise AvsepError(f"{path}: cannot read shard manifest: {err}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise AvsepError(f"{path}: not an avsep shard manifest (no '{FORMAT}' format tag)")
    shards, samples = [], []
    for shard in meta["shards"]:
        shard_path = path.parent / shard["name"]
        shards.append(shard_path)
        for key, label, name, num_frames, offset, size in shard["samples"]:
            samples.append(SampleRef(len(samples), shard_path, offset, size, key, label, name, num_frames))
    if not samples:
        raise AvsepError(f"{path}: the manifest lists no samples")
    return ShardSplit(path, meta["split"], shards, samples)


def parse_wav(data: bytes, where: str) -> tuple[np.dtype, float, int, int, int, int]:
    """``(dtype, scale, channels, rate, data offset, frames)`` of a WAV file held in memory."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AvsepError(f"{where}: not a WAV file")
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        if chunk_id == b"fmt ":
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == 0xFFFE and size >= 26:  # WAVE_FORMAT_EXTENSIBLE: the sub-format starts with the tag
                tag = struct.unpack_from("<H", data, body + 24)[0]
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None or (fmt[0], fmt[3]) not in WAV_DTYPES or fmt[1] < 1:
                raise AvsepError(f"{where}: unsupported or missing WAV format")
            dtype, scale = WAV_DTYPES[(fmt[0], fmt[3])]
            size = min(size, len(data) - body) if size else len(data) - body  # streamed writers leave 0
            return dtype, scale, fmt[1], fmt[2], body, size // (dtype.itemsize * fmt[1])
        pos = body + size + (size & 1)
    raise AvsepError(f"{where}: WAV file has no data chunk")


class MemoryVideo:
    """A :class:`~avsep.data.videos.SoloVideo` held in memory: WAV bytes and JPEG bytes.

    Audio windows are computed exactly as :func:`avsep.data.decode.read_wav` computes them from
    a file, and frames are decoded by the same function as frame files, so a video read from a
    shard gives the same tensors as the same video read from its folder.
    """

    def __init__(self, meta: dict, wav: bytes | memoryview, frames: list[bytes | memoryview], sample_rate: int,
                 where: str = ""):
        self.meta, self.wav, self.frames, self.where = meta, wav, frames, where or meta.get("id", "?")
        self.label: str = meta["label"]
        self.num_frames: int = len(frames)
        self._dtype, self._scale, self._channels, rate, self._offset, self._count = parse_wav(wav, self.where)
        if rate != sample_rate:
            raise AvsepError(f"{self.where}: sample rate {rate} Hz, but the configuration needs {sample_rate} Hz")

    @property
    def video_id(self) -> str:
        return video_id(self.meta["label"], self.meta["name"])

    def audio_length(self) -> int:
        return self._count

    def audio(self, start: int, length: int) -> np.ndarray:
        """``length`` samples from ``start``, zero-padded outside the audio: (length,) float32."""
        out = np.zeros(length, np.float32)
        first, last = max(start, 0), min(start + length, self._count)
        if last > first:
            width = self._dtype.itemsize * self._channels
            data = np.frombuffer(self.wav, self._dtype, count=(last - first) * self._channels,
                                 offset=self._offset + first * width).reshape(-1, self._channels)
            samples = data[:, 0] if self._channels == 1 else data.mean(axis=1, dtype=np.float32)
            out[first - start: first - start + len(samples)] = samples * np.float32(self._scale)
        return out

    def frame(self, index: int, min_side: int) -> Image.Image:
        return read_frame(io.BytesIO(self.frames[index]), min_side)


def member_spans(blob: bytes | memoryview, where: str) -> list[tuple[int, int]]:
    """``(header offset, data size)`` of each of the consecutive ustar members in ``blob``.

    Only the size field is parsed (names are checked by the caller where they matter):
    ``tarfile.TarInfo.frombuf`` cost 2 ms per 80-frame video, as much as decoding a frame.
    """
    spans, pos = [], 0
    while pos + BLOCK <= len(blob):
        if blob[pos + 257:pos + 262] != b"ustar":
            raise AvsepError(f"{where}: unexpected tar header at byte {pos} (not written by avsep shard)")
        try:
            size = int(bytes(blob[pos + 124:pos + 136]).strip(b"\0 ") or b"0", 8)
        except ValueError:
            raise AvsepError(f"{where}: damaged tar header at byte {pos}") from None
        spans.append((pos, size))
        pos += BLOCK + -(-size // BLOCK) * BLOCK
    return spans


def sample_from_blob(ref: SampleRef, blob: bytes | memoryview, sample_rate: int) -> MemoryVideo:
    """The :class:`MemoryVideo` of a sample's bytes (views into ``blob``, no copies), checked
    against its manifest entry: member count, and the names of the first, second and last."""
    where = f"{ref.shard}@{ref.offset}"
    spans = member_spans(blob, where)
    view = memoryview(blob)
    members = [view[pos + BLOCK:pos + BLOCK + size] for pos, size in spans]
    if len(spans) != 2 + ref.num_frames:
        raise AvsepError(f"{where}: sample {ref.key!r} has {len(spans)} tar members, the manifest says "
                         f"{2 + ref.num_frames}: a damaged or replaced shard?")
    expected = {0: f"{ref.key}.json", 1: f"{ref.key}.wav", len(spans) - 1: f"{ref.key}.{ref.num_frames:06d}.jpg"}
    for i, name in expected.items():
        found = bytes(view[spans[i][0]:spans[i][0] + 100]).split(b"\0", 1)[0].decode("utf-8", "replace")
        if found != name:
            raise AvsepError(f"{where}: found {found!r} where the manifest puts {name!r}: a damaged or replaced shard?")
    try:
        meta = json.loads(bytes(members[0]))
    except ValueError as err:
        raise AvsepError(f"{where}: damaged {ref.key}.json ({err})") from None
    return MemoryVideo(meta, members[1], members[2:], sample_rate, where=f"{ref.shard.name}:{ref.key}")


class SampleReader:
    """Reads samples by offset from the shard files, memory-mapped: a sample is a view into the
    page cache, not a copy (streams read shard by shard, so one mapping is kept at a time).

    A shard must not be truncated in place while it is read (reading a mapped page past the new
    end is a SIGBUS); ``avsep shard`` replaces shards by renaming, which is safe.
    """

    def __init__(self, sample_rate: int):
        self.sample_rate = sample_rate
        self._path: Optional[Path] = None
        self._map: Optional[memoryview] = None

    def read(self, ref: SampleRef) -> MemoryVideo:
        if ref.shard != self._path:
            self.close()
            try:
                with open(ref.shard, "rb") as f:
                    self._map = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ))
            except (OSError, ValueError) as err:  # ValueError: an empty file cannot be mapped
                raise AvsepError(f"{ref.shard}: cannot read shard: {getattr(err, 'strerror', None) or err}") from None
            self._path = ref.shard
        blob = self._map[ref.offset:ref.offset + ref.size]
        if len(blob) != ref.size:
            raise AvsepError(f"{ref.shard}: shorter than its manifest says (a truncated shard?)")
        return sample_from_blob(ref, blob, self.sample_rate)

    def close(self) -> None:
        # Videos still hold views into the mapping: it is unmapped when the last one goes.
        self._map, self._path = None, None

    def __getstate__(self) -> dict:  # loader workers get a reader without a mapping
        return {"sample_rate": self.sample_rate, "_path": None, "_map": None}
