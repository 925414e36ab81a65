"""Seeds and pools shared by every part of the generator."""
from __future__ import annotations

import zlib

import numpy as np

# "train": material for training and validation; "test": held-out material (other background
# photographs, another soundfont, other melodies) for checking that a model generalises.
POOLS: tuple[str, ...] = ("train", "test")


def derive_seed(seed: int, *keys: str | int) -> int:
    """A 32-bit seed from ``seed`` and identifying keys, stable across runs and platforms
    (``hash()`` of strings is salted per process, so CRC32 is used instead)."""
    words = [seed & 0xFFFFFFFF] + [zlib.crc32(str(k).encode()) for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def check_pool(pool: str) -> str:
    """``pool`` itself when it is one of ``POOLS``; raises ``ValueError`` naming the choices."""
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; expected one of: {', '.join(POOLS)}")
    return pool
