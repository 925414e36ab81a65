"""Separation quality metrics: BSS Eval v3 (SDR/SIR/SAR), SI-SDR and summaries.

``bss_eval_sources`` reproduces ``mir_eval.separation.bss_eval_sources`` with
``compute_permutation=False`` (time-invariant distortion filters, "sources" mode),
but computes everything that can be shared only once per call:

* one real FFT per reference and per estimate, at a fast (not power-of-two) length;
* one Gram matrix of the delayed references, factorised once and solved for every
  estimate at the same time;
* the per-source (single reference) systems are diagonal blocks of that Gram matrix.

Silent signals: mir_eval raises on an all-zero reference or estimate. Here a silent
reference or a silent estimate gives ``nan`` for that source's three metrics (the
quantities are undefined), and the other sources are still scored; a silent
reference simply contributes nothing to the interference subspace. Evaluation never
averages those NaNs away: :mod:`avsep.evaluation.scoring` scores silent estimates as
failures and skips mixtures whose references are silent, and says how many.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.fft
import scipy.linalg

__all__ = ["bss_eval_sources", "si_sdr", "summarize"]


def bss_eval_sources(reference: np.ndarray, estimate: np.ndarray,
                     filter_len: int = 512) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BSS Eval v3 SDR, SIR and SAR in dB, estimate ``j`` scored against reference ``j``.

    Args:
        reference: true sources, shape (nsrc, nsamples) or (nsamples,) for one source.
        estimate: estimated sources, same shape as ``reference``.
        filter_len: number of taps of the allowed time-invariant distortion filter.

    Returns:
        ``(sdr, sir, sar)``, each of shape (nsrc,). A source whose reference or
        estimate is all zeros gets ``nan``; an exactly perfect decomposition gets ``inf``.

    Raises:
        ValueError: on mismatched shapes, more than 2 dimensions, empty or non-finite input.
    """
    ref, est = _check_pair(reference, estimate)
    if filter_len < 1:
        raise ValueError(f"filter_len must be >= 1, got {filter_len}")
    nsrc, nsamples = ref.shape
    out = np.full((3, nsrc), np.nan)
    ref_alive = np.any(ref != 0, axis=1)
    est_alive = np.any(est != 0, axis=1)
    alive = np.flatnonzero(ref_alive)
    scored = np.flatnonzero(ref_alive & est_alive)
    if scored.size == 0:
        return out[0], out[1], out[2]

    length = nsamples + filter_len - 1  # support of a source filtered by filter_len taps
    n_fft = scipy.fft.next_fast_len(length, real=True)
    ref_f = scipy.fft.rfft(ref[alive], n=n_fft, axis=1)          # (nalive, nfreq)
    est_f = scipy.fft.rfft(est[scored], n=n_fft, axis=1)         # (nscored, nfreq)

    gram = _gram(ref_f, n_fft, filter_len)                       # (nalive*L, nalive*L)
    # Inner products of every estimate with every delayed reference, one column each.
    rhs = _delayed_products(ref_f, est_f, n_fft, filter_len)      # (nalive*L, nscored)

    # Projection onto all (alive) references: one factorisation for every estimate.
    coef_all = _solve(gram, rhs).reshape(alive.size, filter_len, scored.size)
    proj_all = _filter_sum(ref_f, coef_all, n_fft, length)        # (nscored, length)

    # Projection onto the estimate's own reference: a diagonal block of the Gram matrix.
    pos = np.searchsorted(alive, scored)  # where each scored source sits among the alive
    proj_own = np.empty_like(proj_all)
    for k, p in enumerate(pos):
        block = slice(p * filter_len, (p + 1) * filter_len)
        coef = _solve(gram[block, block], rhs[block, k:k + 1])
        proj_own[k] = _filter_sum(ref_f[p:p + 1], coef.reshape(1, filter_len, 1),
                                  n_fft, length)[0]

    est_pad = np.zeros((scored.size, length))
    est_pad[:, :nsamples] = est[scored]
    out[:, scored] = _bss_ratios(est_pad, proj_own, proj_all)
    return out[0], out[1], out[2]


def si_sdr(reference: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """Scale-invariant SDR in dB (Le Roux et al., 2019), per source.

    The reference is rescaled by the least-squares gain onto the estimate, so scaling
    the estimate by any non-zero factor leaves the score unchanged. Signals are used as
    given (no mean removal).

    Args:
        reference: true signals, shape (..., nsamples).
        estimate: estimated signals, same shape.

    Returns:
        Array of shape (...) (the time axis removed). ``nan`` where the reference or
        the estimate is silent, ``inf`` for an exact (scaled) match.
    """
    ref, est = _as_float_pair(reference, estimate)
    ref_energy = np.sum(ref * ref, axis=-1)
    silent = (ref_energy == 0) | ~np.any(est != 0, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.sum(ref * est, axis=-1) / ref_energy
        target = gain[..., None] * ref
        noise = est - target
        result = _db(np.sum(target * target, axis=-1), np.sum(noise * noise, axis=-1))
    return np.where(silent, np.nan, result)


def summarize(values: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Mean and median of each metric, ignoring ``nan`` (e.g. skipped silent sources).

    Args:
        values: metric name -> list of per-source values, e.g. ``{"SDR": [...], ...}``.

    Returns:
        metric name -> ``{"mean": float, "median": float, "count": int}``, where
        ``count`` is the number of non-``nan`` values used (mean and median are ``nan``
        when it is 0).
    """
    summary = {}
    for name, vals in values.items():
        arr = np.asarray(list(vals), dtype=np.float64).ravel()
        arr = arr[~np.isnan(arr)]
        if arr.size == 0:
            summary[name] = {"mean": float("nan"), "median": float("nan"), "count": 0}
            continue
        summary[name] = {"mean": float(np.mean(arr)), "median": float(np.median(arr)),
                         "count": int(arr.size)}
    return summary


# --------------------------------------------------------------------------- helpers


def _as_float_pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as float64 arrays of the same shape; rejects nan/inf."""
    ref = np.asarray(reference, dtype=np.float64)
    est = np.asarray(estimate, dtype=np.float64)
    if ref.shape != est.shape:
        raise ValueError(f"reference and estimate shapes differ: {ref.shape} vs {est.shape}")
    if ref.size == 0:
        raise ValueError("reference and estimate are empty")
    if not (np.all(np.isfinite(ref)) and np.all(np.isfinite(est))):
        raise ValueError("reference and estimate must be finite (no nan or inf)")
    return ref, est


def _check_pair(reference: np.ndarray, estimate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated (nsrc, nsamples) float64 copies of the inputs."""
    ref, est = _as_float_pair(reference, estimate)
    if ref.ndim == 1:
        ref, est = ref[None], est[None]
    if ref.ndim != 2:
        raise ValueError(f"expected (nsrc, nsamples) arrays, got {ref.ndim} dimensions")
    return ref, est


def _lags(spec_a: np.ndarray, spec_b: np.ndarray, n_fft: int, filter_len: int) -> np.ndarray:
    """Cross-correlation ``c[m] = sum_t a[t+m] b[t]`` for m = 0, -1, ..., -(filter_len-1).

    Shapes: spectra (..., nfreq) -> (..., filter_len). ``n_fft`` >= nsamples +
    filter_len - 1 guarantees these lags are not wrapped around by the circular FFT.
    """
    corr = scipy.fft.irfft(spec_a * np.conj(spec_b), n=n_fft, axis=-1)
    return np.concatenate([corr[..., :1], corr[..., :-filter_len:-1]], axis=-1)


def _gram(ref_f: np.ndarray, n_fft: int, filter_len: int) -> np.ndarray:
    """Gram matrix of all references delayed by 0..filter_len-1 samples.

    Row/column ``i * filter_len + d`` is reference ``i`` delayed by ``d``.
    Shape (nsrc * filter_len, nsrc * filter_len).
    """
    nsrc = ref_f.shape[0]
    gram = np.empty((nsrc * filter_len, nsrc * filter_len))
    for i in range(nsrc):
        for k in range(i, nsrc):
            corr = scipy.fft.irfft(ref_f[i] * np.conj(ref_f[k]), n=n_fft)
            # <ref_i delayed a, ref_k delayed b> = corr[b - a]: a Toeplitz block.
            block = scipy.linalg.toeplitz(np.concatenate([corr[:1], corr[:-filter_len:-1]]),
                                          corr[:filter_len])
            gram[i * filter_len:(i + 1) * filter_len, k * filter_len:(k + 1) * filter_len] = block
            gram[k * filter_len:(k + 1) * filter_len, i * filter_len:(i + 1) * filter_len] = block.T
    return gram


def _delayed_products(ref_f: np.ndarray, est_f: np.ndarray, n_fft: int,
                      filter_len: int) -> np.ndarray:
    """Inner products <reference i delayed by d, estimate e>.

    Shapes: ref_f (nsrc, nfreq), est_f (nest, nfreq) -> (nsrc * filter_len, nest).
    """
    prods = _lags(ref_f[:, None, :], est_f[None, :, :], n_fft, filter_len)  # (nsrc, nest, L)
    return prods.transpose(0, 2, 1).reshape(-1, est_f.shape[0])


def _solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the normal equations ``gram @ x = rhs``; least squares if ``gram`` is singular.

    Cholesky first (the Gram matrix is symmetric positive semi-definite, and this is the
    fastest path), LU (``scipy.linalg.solve``) when rounding makes it look indefinite,
    ``lstsq`` when it is exactly singular. Ill-conditioning warnings are silenced: like
    mir_eval we accept the solution, whose projection is still accurate.
    Shapes: gram (m, m), rhs (m, k) -> (m, k).
    """
    try:
        factor = scipy.linalg.cho_factor(gram, check_finite=False)
        return scipy.linalg.cho_solve(factor, rhs, check_finite=False)
    except np.linalg.LinAlgError:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        try:
            return scipy.linalg.solve(gram, rhs, check_finite=False)
        except np.linalg.LinAlgError:
            return scipy.linalg.lstsq(gram, rhs, check_finite=False)[0]


def _filter_sum(ref_f: np.ndarray, coef: np.ndarray, n_fft: int, length: int) -> np.ndarray:
    """Sum over references of reference ``i`` filtered by ``coef[i, :, e]``, per estimate ``e``.

    Shapes: ref_f (nsrc, nfreq), coef (nsrc, filter_len, nest) -> (nest, length).
    """
    coef_f = scipy.fft.rfft(coef, n=n_fft, axis=1)                 # (nsrc, nfreq, nest)
    spec = np.einsum("if,ife->ef", ref_f, coef_f)
    return scipy.fft.irfft(spec, n=n_fft, axis=1)[:, :length]


def _bss_ratios(est: np.ndarray, proj_own: np.ndarray, proj_all: np.ndarray) -> np.ndarray:
    """SDR, SIR, SAR from the two projections; all inputs (nest, length) -> (3, nest).

    With s_target = proj_own, e_interf = proj_all - proj_own, e_artif = est - proj_all.
    """
    def energy(x: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", x, x)

    target = energy(proj_own)
    return np.stack([
        _db(target, energy(est - proj_own)),
        _db(target, energy(proj_all - proj_own)),
        _db(energy(proj_all), energy(est - proj_all)),
    ])


def _db(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``10 log10(num / den)``, ``inf`` for a zero denominator (as mir_eval), ``nan`` for 0/0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = 10.0 * np.log10(num / den)
    return np.where((den == 0) & (num > 0), np.inf, ratio)
