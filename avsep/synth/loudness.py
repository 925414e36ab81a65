"""Loudness of the sounding parts of a clip, setting it, and a transparent peak limiter.

Real recordings range from quiet, distant players to loud close-ups, so each clip gets its own
level. Levels are RMS in dBFS over the clip's sounding parts only: rests do not make a clip
count as quieter. Audio is mono float ``[samples]``.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d

LOUDNESS_RANGE_DB = (-35.0, -10.0)
PEAK_LIMIT = 0.9
WINDOW_S = 0.05
# A window sounds when within this many dB of the loudest window (and above SILENCE_DB).
ACTIVE_RANGE_DB = 40.0
SILENCE_DB = -80.0


def window_rms_db(audio: np.ndarray, rate: int, window_s: float = WINDOW_S) -> np.ndarray:
    """RMS of consecutive ``window_s`` windows in dBFS; ``[n_windows]`` (``-inf`` for silence)."""
    n = max(1, round(window_s * rate))
    usable = len(audio) // n * n
    if usable == 0:
        return np.full(1, -np.inf)
    power = np.mean(audio[:usable].astype(np.float64).reshape(-1, n) ** 2, axis=1)
    with np.errstate(divide="ignore"):
        return 10 * np.log10(power)


def active_rms_db(audio: np.ndarray, rate: int) -> float:
    """RMS in dBFS over the sounding windows of ``audio``; ``-inf`` when it is all silent."""
    db = window_rms_db(audio, rate)
    active = db[(db > db.max() - ACTIVE_RANGE_DB) & (db > SILENCE_DB)]
    if active.size == 0:
        return -np.inf
    return float(10 * np.log10(np.mean(10 ** (active / 10))))


def limit_peaks(audio: np.ndarray, rate: int, ceiling: float = PEAK_LIMIT, hold_s: float = 0.004) -> np.ndarray:
    """Keep ``|audio| <= ceiling`` with a smooth gain instead of clipping; float32 ``[n]``.

    The gain each sample needs is spread over ``hold_s`` either side by a minimum filter, then
    smoothed by a moving average of the same width: every value averaged at a peak is at most
    the peak's own gain, so the ceiling holds exactly, with no hard corners (no distortion).
    """
    need = np.minimum(1.0, ceiling / np.maximum(np.abs(audio), 1e-12))
    if need.min() >= 1.0:
        return audio.astype(np.float32)
    width = 2 * max(1, round(hold_s * rate)) + 1
    gain = uniform_filter1d(minimum_filter1d(need, width, mode="nearest"), width, mode="nearest")
    return (audio * np.minimum(gain, need)).astype(np.float32)


def set_loudness(audio: np.ndarray, rate: int, target_db: float) -> np.ndarray:
    """``audio`` scaled so its sounding parts have an RMS of ``target_db`` dBFS, with peaks
    limited to ``PEAK_LIMIT`` (a few passes, as limiting lowers the RMS a little); float32."""
    out = audio.astype(np.float32)
    for _ in range(6):
        level = active_rms_db(out, rate)
        if not np.isfinite(level) or abs(level - target_db) < 0.1:
            break
        out = limit_peaks(out * np.float32(10 ** ((target_db - level) / 20)), rate)
    return out


def random_loudness(rng: np.random.Generator) -> float:
    """A clip level in dBFS, uniform over ``LOUDNESS_RANGE_DB``."""
    return float(rng.uniform(*LOUDNESS_RANGE_DB))
