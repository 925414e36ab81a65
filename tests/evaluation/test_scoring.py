"""Scores that cannot flatter: silent and non-finite estimates count, the mixture is the baseline."""
import numpy as np
import pytest

from avsep.evaluation import metrics
from avsep.evaluation.scoring import FLOOR_DB, score_mixture, score_sources, silent_estimates


def _sources(seed=0, n=8000):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((2, n))


def test_mixture_baseline_and_improvement():
    sources = _sources()
    mix = sources.sum(axis=0)
    rng = np.random.default_rng(1)
    scores = score_mixture(sources, {"model": sources + 0.1 * rng.standard_normal(sources.shape)}, mix)
    assert np.allclose(scores["mixture"]["SDRi"], 0.0)
    expected = metrics.bss_eval_sources(sources, np.stack([mix, mix]))[0]
    np.testing.assert_allclose(scores["mixture"]["SDR"], expected)
    assert all(sdr > 15 for sdr in scores["model"]["SDR"])
    np.testing.assert_allclose(np.array(scores["model"]["SDRi"]),
                               np.array(scores["model"]["SDR"]) - np.array(scores["mixture"]["SDR"]))


def test_silent_and_non_finite_estimates_score_the_floor():
    sources = _sources()
    mix = sources.sum(axis=0)
    estimate = np.stack([np.zeros(8000), np.full(8000, np.nan)])
    scores = score_sources(sources, estimate, mix)
    assert scores["silent"].tolist() == [True, True]
    for metric in ("SDR", "SIR", "SAR", "SI-SDR"):
        assert scores[metric].tolist() == [FLOOR_DB, FLOOR_DB]


def test_nothing_scores_below_almost_nothing():
    sources = _sources()
    mix = sources.sum(axis=0)
    nothing = score_mixture(sources, {"model": np.zeros_like(sources)}, mix)["model"]
    almost = score_mixture(sources, {"model": 1e-3 * np.random.default_rng(2).standard_normal(sources.shape)},
                           mix)["model"]
    assert np.mean(nothing["SDR"]) < np.mean(almost["SDR"]) and np.median(nothing["SDR"]) == FLOOR_DB
    assert nothing["silent"] == [True, True] and almost["silent"] == [False, False]


@pytest.mark.parametrize("scale, silent", [(0.0, True), (1e-9, True), (1e-4, False)])
def test_silence_is_relative_to_the_mixture(scale, silent):
    mix = _sources()[0]
    assert silent_estimates(scale * mix[None], mix).tolist() == [silent]
