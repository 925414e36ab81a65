"""Writing mp4 files: H.264 video and AAC audio, muxed with PyAV.

Frames are RGB uint8 ``[H, W, 3]``; sizes are ``(width, height)`` like PIL; audio is mono
float32 ``[samples]``.
"""
from __future__ import annotations

import os
from fractions import Fraction
from typing import Iterable

import av
import numpy as np

DEFAULT_FPS = 24


def write_mp4(path: str | os.PathLike, frames: Iterable[np.ndarray], size: tuple[int, int], fps: int,
              audio: np.ndarray | None, rate: int, n_frames: int, comment: str | None = None) -> None:
    """Encode RGB frames ``[H, W, 3]`` (H.264, yuv420p) and mono float audio ``[n]`` (AAC) to mp4.

    ``audio=None`` writes a video-only file. Audio is muxed in per-frame chunks so the two
    streams stay interleaved, as a camera would record them. ``comment`` goes into the
    container's ``comment`` tag (the generator puts the video's metadata there as JSON).
    """
    w, h = size
    if w % 2 or h % 2:
        raise ValueError(f"frame size must be even for yuv420p, got {w}x{h}")
    with av.open(str(path), "w", format="mp4") as out:
        if comment is not None:
            out.metadata["comment"] = comment
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        # One encoder thread: parallelism comes from generating several videos at once, and
        # the output bytes then do not depend on the machine's core count.
        # CRF 26 rather than 23: a third faster and half the size, still with no visible blocks.
        vs.options = {"preset": "veryfast", "crf": "26", "threads": "1"}
        as_ = None
        if audio is not None:
            as_ = out.add_stream("aac", rate=rate)
            as_.layout = "mono"
            as_.bit_rate = 96000
            as_.options = {"aac_coder": "fast"}  # about 4x faster than the default two-loop coder
            audio = np.ascontiguousarray(audio, dtype=np.float32)
        for i, frame in enumerate(frames):
            out.mux(vs.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            if as_ is not None:
                a, b = i * len(audio) // n_frames, (i + 1) * len(audio) // n_frames
                chunk = av.AudioFrame.from_ndarray(audio[None, a:b], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = rate, a, Fraction(1, rate)
                out.mux(as_.encode(chunk))
        out.mux(vs.encode(None))
        if as_ is not None:
            out.mux(as_.encode(None))
