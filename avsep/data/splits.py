"""Which split each video belongs to, and which videos a model was trained on.

**Splits never move.** A video's split depends only on its own identity (``label/name``) and the
seed: a hash of the two, read as a number u in [0, 1), puts it in test when u < test_frac, in val
when u < test_frac + val_frac, and in train otherwise. Adding or removing other videos can never
move a training video into test or the other way round. Within each label the proportions are
the requested ones in expectation (the counts are binomial: 100 videos at 10% give 10 +- 3).

**Training manifests.** A checkpoint records a 64-bit hash of the identity of every video it
was trained on (:func:`training_manifest`); ``avsep evaluate`` checks its test videos against it
(:func:`manifest_overlap`).
"""
from __future__ import annotations

import hashlib
from typing import Iterable, Sequence

from avsep.data.index import IndexRow

SPLITS = ("train", "val", "test")


def video_id(label: str, name: str) -> str:
    """The identity of a video: ``label/name`` (its folder and file stem)."""
    return f"{label}/{name}"


def row_video_id(row: IndexRow) -> str:
    """The identity of an index row's video (the audio file's stem is the video's name)."""
    return video_id(row.label, row.audio.stem)


def unit_hash(text: str, seed: int) -> float:
    """A number in [0, 1) fixed by ``text`` and ``seed``, uniform over texts."""
    digest = hashlib.sha256(f"{seed}\0{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def assign_split(vid: str, seed: int, val_frac: float, test_frac: float) -> str:
    """``train``, ``val`` or ``test`` for the video ``vid``, from its identity and the seed alone."""
    u = unit_hash(vid, seed)
    return "test" if u < test_frac else "val" if u < test_frac + val_frac else "train"


def assign_splits(ids: Iterable[str], seed: int, val_frac: float, test_frac: float) -> dict[str, str]:
    """:func:`assign_split` for many ``label/name`` ids."""
    return {vid: assign_split(vid, seed, val_frac, test_frac) for vid in ids}


def id_hash64(vid: str) -> int:
    """A signed 64-bit hash of a video identity (fits an int64 tensor)."""
    return int.from_bytes(hashlib.sha256(vid.encode()).digest()[:8], "big", signed=True)


def training_manifest(rows: Sequence[IndexRow]) -> dict:
    """What a checkpoint records of its training videos: sorted int64 hashes, their count and a
    SHA-256 digest of the sorted identities (to compare two runs' training sets at a glance)."""
    import torch  # here, not at the top: preprocess's spawned workers import this module

    ids = sorted({row_video_id(row) for row in rows})
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    hashes = torch.tensor(sorted(id_hash64(vid) for vid in ids), dtype=torch.int64)
    return {"hashes": hashes, "count": len(ids), "digest": digest}


def manifest_overlap(manifest: dict, rows: Sequence[IndexRow]) -> list[str]:
    """The identities of ``rows`` that the manifest's model was trained on, sorted."""
    trained = set(manifest["hashes"].tolist())
    return sorted({row_video_id(row) for row in rows if id_hash64(row_video_id(row)) in trained})
