"""Encoding: mp4 files (H.264 video, AAC audio) with PyAV, for generated videos and heatmap videos."""
from __future__ import annotations

import os
from fractions import Fraction
from typing import Iterable

import av
import numpy as np


def write_mp4(path: str | os.PathLike, frames: Iterable[np.ndarray], size: tuple[int, int], fps: float,
              audio: np.ndarray | None, rate: int, n_frames: int, comment: str | None = None,
              threads: int = 1, crf: int = 23) -> None:
    """Encode RGB frames (H, W, 3) uint8 (H.264, yuv420p) and mono float audio (n,) (AAC) to mp4.

    ``audio=None`` writes a video-only file. Audio is muxed in per-frame chunks so that the two
    streams stay interleaved, as a camera records them; ``n_frames`` says how many frames come,
    to cut the audio into that many chunks (if fewer come, the rest of the audio follows the
    last). ``comment`` goes into the container's comment tag.
    ``size`` is (W, H), both even; ``crf`` is x264's quality (lower is better and larger).
    Write to a temporary path and rename (see
    :func:`avsep.utils.atomic_path`) so that no half-written file is ever seen.
    """
    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"frame size must be even for yuv420p, got {width}x{height}")
    with av.open(str(path), "w", format="mp4") as out:
        if comment is not None:
            out.metadata["comment"] = comment
        video = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        # One thread by default: generated videos are made in parallel processes, and the bytes
        # then do not depend on the machine's core count.
        video.options = {"preset": "veryfast", "crf": str(crf), "threads": str(threads)}
        sound = None
        if audio is not None:
            sound = out.add_stream("aac", rate=rate)
            sound.layout = "mono"
            sound.bit_rate = 96000
            sound.options = {"aac_coder": "fast"}  # about 4x faster than the default two-loop coder
            audio = np.ascontiguousarray(np.clip(audio, -1.0, 1.0), dtype=np.float32)
        def mux_audio(a: int, b: int) -> None:
            if b > a:
                chunk = av.AudioFrame.from_ndarray(audio[None, a:b], format="fltp", layout="mono")
                chunk.sample_rate, chunk.pts, chunk.time_base = rate, a, Fraction(1, rate)
                out.mux(sound.encode(chunk))

        muxed = 0
        for i, frame in enumerate(frames):
            out.mux(video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
            if sound is not None:
                end = min(len(audio), (i + 1) * len(audio) // n_frames)  # all written once n_frames have come
                mux_audio(muxed, end)
                muxed = end
        out.mux(video.encode(None))
        if sound is not None:
            mux_audio(muxed, len(audio))
            out.mux(sound.encode(None))
