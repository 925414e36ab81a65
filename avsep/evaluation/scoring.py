"""Scoring separated sources so that nothing can flatter a model.

* **Every estimate is scored.** BSS Eval is undefined for an all-zero estimate (mir_eval raises,
  :func:`avsep.evaluation.metrics.bss_eval_sources` returns NaN), and dropping NaNs from an
  average would let a model that outputs nothing score better than one that outputs almost
  nothing. Here a *silent* estimate (all zeros, or more than 120 dB below the mixture) and a
  non-finite one score :data:`FLOOR_DB` on every metric, and are counted in every mean and
  median, and in ``silent``.
* **References must be audible.** A mixture in which some source is silent cannot be scored
  (the metrics are undefined for every system, not only the model's): it is skipped, and the
  caller reports how many were skipped and why.
* **The mixture itself is scored** as the estimate of every source, the baseline every SDR
  improvement (SDRi) is measured against.
"""
from __future__ import annotations

import numpy as np

from avsep.evaluation.metrics import bss_eval_sources, si_sdr

FLOOR_DB = -50.0         # the score of a silent or non-finite estimate, on every metric (dB)
SILENT_RATIO = 1e-6      # an estimate whose RMS is below this fraction of the mixture's is silent
EXACT_DB = 300.0         # the score of an exact reconstruction (BSS Eval gives +inf)
METRICS = ("SDR", "SIR", "SAR", "SI-SDR", "SDRi")


def rms(signal: np.ndarray) -> np.ndarray:
    """Root mean square over the last axis."""
    return np.sqrt(np.mean(np.square(np.asarray(signal, dtype=np.float64)), axis=-1))


def silent_estimates(estimate: np.ndarray, mixture: np.ndarray) -> np.ndarray:
    """(N,) True where an estimate (N, n) is non-finite or silent next to the mixture (n,)."""
    finite = np.isfinite(estimate).all(axis=-1)
    loudness = rms(np.where(np.isfinite(estimate), estimate, 0.0))
    return ~finite | (loudness <= SILENT_RATIO * max(float(rms(mixture)), 1e-12))


def silent_references(sources: np.ndarray, mixture: np.ndarray) -> np.ndarray:
    """(N,) True where a reference source (N, n) is too quiet to be scored."""
    return silent_estimates(sources, mixture)


def score_sources(sources: np.ndarray, estimate: np.ndarray, mixture: np.ndarray) -> dict[str, np.ndarray]:
    """SDR, SIR, SAR and SI-SDR (dB) of each estimate against its reference.

    Args:
        sources: (N, n) audible references.
        estimate: (N, n) estimates, in the same order.
        mixture: (n,) the mixture, to tell silent estimates.
    Returns:
        metric -> (N,) values, plus ``silent`` -> (N,) bools. Silent or non-finite estimates
        score :data:`FLOOR_DB` everywhere.
    """
    sources = np.asarray(sources, dtype=np.float64)
    silent = silent_estimates(estimate, mixture)
    usable = np.where(silent[:, None], 0.0, np.nan_to_num(np.asarray(estimate, dtype=np.float64)))
    sdr, sir, sar = bss_eval_sources(sources, usable)
    scores = {"SDR": sdr, "SIR": sir, "SAR": sar, "SI-SDR": si_sdr(sources, usable)}
    for name, values in scores.items():
        # Undefined (NaN) counts as a failure; an exact reconstruction (+inf) is capped so that
        # one such source cannot make a mean infinite.
        values = np.nan_to_num(values, nan=FLOOR_DB, posinf=EXACT_DB, neginf=FLOOR_DB)
        scores[name] = np.where(silent, FLOOR_DB, values)
    scores["silent"] = silent
    return scores


def score_mixture(sources: np.ndarray, estimates: dict[str, np.ndarray], mix: np.ndarray) -> dict[str, dict]:
    """Per-source scores of each system for one mixture whose references are all audible.

    Args:
        sources: (N, n) ground truth; estimates: system name -> (N, n); mix: (n,).
    Returns:
        system -> metric -> list of N values, ``SDRi`` included, and ``silent`` -> list of N
        bools; the ``mixture`` system is the unprocessed mixture given for every source.
    """
    systems = {"mixture": np.repeat(np.asarray(mix)[None], len(sources), axis=0), **estimates}
    results: dict[str, dict] = {}
    for name, estimate in systems.items():
        scores = score_sources(sources, estimate, mix)
        scores["SDRi"] = scores["SDR"] - results["mixture"]["SDR"] if results else scores["SDR"] * 0.0
        results[name] = scores
    return {name: {k: v.tolist() for k, v in scores.items()} for name, scores in results.items()}


def score_against_stems(stem_paths: list, estimates: list[np.ndarray], mixture: np.ndarray,
                        sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """SDR of separated waveforms, and of the mixture itself, against ground-truth stem files.

    Stems are decoded at ``sample_rate`` and every signal is cut to the shortest one.
    Returns two (N,) arrays: the estimates' SDR (silent ones at :data:`FLOOR_DB`) and the mixture's.
    """
    from avsep.data.decode import load_audio

    stems = [load_audio(path, sample_rate) for path in stem_paths]
    n = min(len(mixture), *(len(s) for s in stems), *(len(e) for e in estimates))
    reference = np.stack([s[:n] for s in stems]).astype(np.float64)
    mix = np.asarray(mixture[:n], dtype=np.float64)
    scores = score_mixture(reference, {"model": np.stack([e[:n] for e in estimates])}, mix)
    return np.array(scores["model"]["SDR"]), np.array(scores["mixture"]["SDR"])
