"""Audio for the page: a stretch of a stem, computed from only the windows it needs, as WAV bytes.

A click asks for the sound of a spot *from the playing moment on*, so the first answer must be
short and fast whatever the video's length. :func:`span_audio` slices an :class:`Analysis` down
to the windows that overlap the stretch (plus a small margin) and separates only those: the cost
is that of the stretch, not of the video. Every window that covers a sample of the stretch is
kept, so the triangular cross-fade between windows gives exactly what separating the whole video
gives there.
"""
from __future__ import annotations

import dataclasses
import math
import struct

import numpy as np

from avsep.errors import AvsepError
from avsep.inference.analysis import Analysis, resample
from avsep.inference.regions import Region

MODES = ("spot", "residual", "original")
# Model-rate samples separated beyond each end of a stretch: resampling to the input rate rings
# near the ends of what it is given (~10 samples for the usual rates), and this keeps that outside.
MARGIN = 256


def span_audio(analysis: Analysis, region: Region | None, first: int, last: int, mode: str = "spot",
               pool: str | None = None) -> np.ndarray:
    """Samples ``[first, last)`` (at the input's rate) of the region's stem, of the mixture minus
    it (``residual``) or of the mixture itself (``original``, where ``region`` may be None)."""
    if mode not in MODES:
        raise AvsepError(f"mode={mode!r}: choose one of {', '.join(MODES)}")
    total = len(analysis.input_mixture)
    first, last = max(0, int(first)), min(total, int(last))
    if last <= first:
        return np.zeros(0, dtype=np.float32)
    mixture = analysis.input_mixture[first:last]
    if mode == "original":
        return mixture.astype(np.float32, copy=False)
    if region is None:
        raise AvsepError(f"mode={mode}: give a point, a box or a track to separate")
    stem = _stem_span(analysis, region, first, last, pool)
    return stem if mode == "spot" else (mixture - stem).astype(np.float32)


def _stem_span(analysis: Analysis, region: Region, first: int, last: int, pool: str | None) -> np.ndarray:
    in_rate, rate, length = analysis.input_rate, analysis.sample_rate, analysis.cfg.audio_len
    low, high = first * rate / in_rate - MARGIN, last * rate / in_rate + MARGIN
    starts = analysis.starts
    chosen = np.nonzero((starts + length > low) & (starts < high))[0]
    if not len(chosen):
        return np.zeros(last - first, dtype=np.float32)
    a, b = int(chosen[0]), int(chosen[-1]) + 1
    begin = int(starts[a])
    end = min(int(starts[b - 1]) + length, len(analysis.mixture))
    # The sub-analysis works at the model's rate (input_rate = sample_rate): resampling is done
    # below, on a span aligned to a sample that both rates share, so that no fractional delay
    # creeps in between chunks.
    part = analysis.mixture[begin:end]
    sub = dataclasses.replace(analysis, starts=starts[a:b] - begin, gains=analysis.gains[a:b],
                              sound=analysis.sound[a:b], mix_spec=analysis.mix_spec[a:b],
                              window_frames=analysis.window_frames[a:b], mixture=part, input_mixture=part,
                              input_rate=rate, tracks={})
    stem = sub.separate_regions([region], pool=pool)[0][0]
    if in_rate == rate:
        return _fit(stem[first - begin:last - begin], last - first)
    step = rate // math.gcd(rate, in_rate)          # model samples between two shared instants
    aligned = begin // step * step
    stem = np.concatenate([np.zeros(begin - aligned, dtype=np.float32), stem])
    offset = aligned // step * (in_rate // math.gcd(rate, in_rate))
    return _fit(resample(stem, rate, in_rate)[first - offset:last - offset], last - first)


def _fit(audio: np.ndarray, count: int) -> np.ndarray:
    out = np.zeros(count, dtype=np.float32)
    out[:min(count, len(audio))] = audio[:count]
    return out


def wav_bytes(audio: np.ndarray, rate: int) -> bytes:
    """Mono 16-bit PCM WAV: what both ``decodeAudioData`` and a download expect, half the bytes
    of float32. Samples beyond [-1, 1] (a separation can overshoot slightly) are clipped."""
    pcm = np.clip(np.round(np.asarray(audio, dtype=np.float32) * 32768.0), -32768, 32767).astype("<i2")
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + pcm.nbytes, b"WAVE", b"fmt ", 16, 1, 1,
                         int(rate), int(rate) * 2, 2, 16, b"data", pcm.nbytes)
    return header + pcm.tobytes()
