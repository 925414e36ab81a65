"""Tests for avsep.metrics: agreement with mir_eval's BSS Eval v3 and basic properties."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.signal

from avsep.evaluation import metrics

SR = 11025


def _speech_like(rng: np.random.Generator, n: int) -> np.ndarray:
    """Formant-coloured noise with a syllable-rate on/off envelope, shape (n,)."""
    t = np.arange(n) / SR
    noise = scipy.signal.lfilter([1.0], [1.0, -1.6, 0.8], rng.standard_normal(n))
    envelope = np.clip(np.sin(2 * np.pi * rng.uniform(3, 5) * t + rng.uniform(0, 6)), 0, None) ** 2
    return noise * envelope


def _music_like(rng: np.random.Generator, n: int) -> np.ndarray:
    """A harmonic tone with tremolo and a little noise, shape (n,)."""
    t = np.arange(n) / SR
    f0 = rng.uniform(100, 400)
    tone = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h for h in range(1, 8))
    return tone * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t)) + 0.01 * rng.standard_normal(n)


def _case(seed: int, nsrc: int, n: int = 65535,
          leak: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """References (nsrc, n) and partially separated estimates: filtered + leakage + noise."""
    rng = np.random.default_rng(seed)
    makers = (_speech_like, _music_like)
    ref = np.stack([makers[k % 2](rng, n) for k in range(nsrc)])
    est = np.empty_like(ref)
    for j in range(nsrc):
        taps = np.zeros(16)
        taps[0] = 1.0
        taps[1:] = rng.uniform(-0.3, 0.3, 15) * np.exp(-np.arange(1, 16) / 4)
        est[j] = scipy.signal.lfilter(taps, [1.0], ref[j])
        est[j] += leak * ref[(j + 1) % nsrc] + 0.05 * rng.standard_normal(n)
    return ref, est


def _mir_eval(ref: np.ndarray, est: np.ndarray) -> np.ndarray:
    """mir_eval's (sdr, sir, sar) as a (3, nsrc) array, its deprecation warnings silenced."""
    mir_separation = pytest.importorskip("mir_eval.separation")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array(mir_separation.bss_eval_sources(ref, est, compute_permutation=False)[:3])


@pytest.mark.parametrize("seed,nsrc", [(0, 2), (1, 2), (2, 3), (3, 3)])
def test_agrees_with_mir_eval(seed: int, nsrc: int) -> None:
    ref, est = _case(seed, nsrc)
    ours = np.array(metrics.bss_eval_sources(ref, est))
    assert ours.shape == (3, nsrc)
    np.testing.assert_allclose(ours, _mir_eval(ref, est), atol=0.01, rtol=0)


def test_agrees_with_mir_eval_on_float32_short_signals() -> None:
    ref, est = (x.astype(np.float32) for x in _case(4, 2, n=8000))
    ours = np.array(metrics.bss_eval_sources(ref, est))
    theirs = _mir_eval(ref.astype(np.float64), est.astype(np.float64))
    np.testing.assert_allclose(ours, theirs, atol=0.01, rtol=0)


def test_perfect_estimate_scores_very_high() -> None:
    ref, _ = _case(5, 2, n=16000)
    sdr, sir, sar = metrics.bss_eval_sources(ref, ref)
    assert np.all(sdr > 100) and np.all(sir > 100) and np.all(sar > 100)


def test_sdr_is_scale_invariant_and_si_sdr_too() -> None:
    ref, est = _case(6, 2, n=16000)
    sdr, _, _ = metrics.bss_eval_sources(ref, est)
    sdr_scaled, _, _ = metrics.bss_eval_sources(ref, 0.25 * est)
    np.testing.assert_allclose(sdr, sdr_scaled, atol=1e-6)
    si = metrics.si_sdr(ref, est)
    assert si.shape == (2,)
    np.testing.assert_allclose(metrics.si_sdr(ref, 3.0 * est), si, atol=1e-9)
    np.testing.assert_allclose(metrics.si_sdr(ref, -0.5 * est), si, atol=1e-9)


def test_si_sdr_known_value() -> None:
    rng = np.random.default_rng(7)
    ref = rng.standard_normal(10000)
    noise = rng.standard_normal(10000)
    noise -= ref * (noise @ ref) / (ref @ ref)  # orthogonal, so the target is exactly ref
    noise *= 0.1 * np.linalg.norm(ref) / np.linalg.norm(noise)
    assert metrics.si_sdr(ref, ref + noise) == pytest.approx(20.0, abs=1e-9)


def test_sir_increases_when_leakage_decreases() -> None:
    sirs = [metrics.bss_eval_sources(*_case(8, 2, n=16000, leak=leak))[1] for leak in (0.5, 0.2, 0.05)]
    for louder, quieter in zip(sirs, sirs[1:]):
        assert np.all(quieter > louder + 3)




def test_silent_sources_give_nan_without_crashing() -> None:
    ref, est = _case(10, 3, n=16000)
    silent_ref = ref.copy()
    silent_ref[1] = 0.0
    sdr, sir, sar = metrics.bss_eval_sources(silent_ref, est)
    assert np.isnan(sdr[1]) and np.isnan(sir[1]) and np.isnan(sar[1])
    assert np.all(np.isfinite(sdr[[0, 2]]))
    silent_est = est.copy()
    silent_est[2] = 0.0
    sdr, _, _ = metrics.bss_eval_sources(ref, silent_est)
    assert np.isnan(sdr[2]) and np.all(np.isfinite(sdr[:2]))
    # Scores of the non-silent sources are unchanged by the other source going silent.
    full = metrics.bss_eval_sources(ref, est)[0]
    np.testing.assert_allclose(sdr[:2], full[:2])
    assert np.all(np.isnan(metrics.si_sdr(np.zeros(100), np.ones(100))))


def test_invalid_input_raises() -> None:
    ref, est = _case(11, 2, n=4000)
    with pytest.raises(ValueError):
        metrics.bss_eval_sources(ref, est[:, :-1])
    bad = est.copy()
    bad[0, 5] = np.nan
    with pytest.raises(ValueError):
        metrics.bss_eval_sources(ref, bad)
    with pytest.raises(ValueError):
        metrics.bss_eval_sources(ref[None], est[None])


def test_singular_system_falls_back_to_least_squares() -> None:
    gram = np.array([[1.0, 1.0], [1.0, 1.0]])
    x = metrics._solve(gram, np.array([[2.0], [2.0]]))
    np.testing.assert_allclose(gram @ x, [[2.0], [2.0]])


def test_summarize_ignores_nan() -> None:
    summary = metrics.summarize({"SDR": [1.0, float("nan"), 3.0, 10.0], "SIR": []})
    assert summary["SDR"] == {"mean": pytest.approx(14 / 3), "median": 3.0, "count": 3}
    assert np.isnan(summary["SIR"]["mean"]) and summary["SIR"]["count"] == 0
