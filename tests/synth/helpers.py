"""Decoding helpers for the generator's tests."""
from __future__ import annotations

import av
import numpy as np


def decode_audio(path) -> tuple[np.ndarray, int]:
    """Mono float32 ``[n]`` and its rate."""
    with av.open(str(path)) as c:
        frames = [f.to_ndarray() for f in c.decode(audio=0)]
        rate = c.streams.audio[0].rate
    return np.concatenate([f.mean(axis=0) for f in frames]).astype(np.float32), rate


def decode_frames(path, step: int = 1) -> np.ndarray:
    """Every ``step``-th frame, ``[T, H, W, 3]`` uint8."""
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % step == 0])


def video_size(path) -> tuple[int, int]:
    with av.open(str(path)) as c:
        ctx = c.streams.video[0].codec_context
        return ctx.width, ctx.height
