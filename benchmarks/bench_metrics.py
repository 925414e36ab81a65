"""Benchmark avsep.metrics.bss_eval_sources against mir_eval on 2 x 65535-sample pairs.

Prints seconds per (reference, estimate) pair for both implementations and the largest
absolute difference in SDR/SIR/SAR (dB). Run::

    /work/venv/bin/python benchmarks/bench_metrics.py [--pairs 100] [--mir-pairs 10]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import scipy.signal

from avsep.evaluation.metrics import bss_eval_sources

SR = 11025
NSAMPLES = 65535


def make_pair(rng: np.random.Generator, nsrc: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Speech/music-like references (nsrc, NSAMPLES) and partially separated estimates."""
    t = np.arange(NSAMPLES) / SR
    refs = []
    for k in range(nsrc):
        if k % 2 == 0:  # coloured noise gated at syllable rate
            x = scipy.signal.lfilter([1.0], [1.0, -1.6, 0.8], rng.standard_normal(NSAMPLES))
            x *= np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 2
        else:  # harmonic tone with tremolo
            f0 = rng.uniform(100, 400)
            x = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h for h in range(1, 8))
            x = x * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t)) + 0.01 * rng.standard_normal(NSAMPLES)
        refs.append(x)
    ref = np.stack(refs)
    leak = rng.uniform(0.05, 0.5)
    est = np.stack([scipy.signal.lfilter([1.0, rng.uniform(-0.3, 0.3)], [1.0], ref[j])
                    + leak * ref[(j + 1) % nsrc] + 0.05 * rng.standard_normal(NSAMPLES)
                    for j in range(nsrc)])
    return ref, est


def time_per_pair(fn, pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[float, np.ndarray]:
    """Mean seconds per call of ``fn(ref, est)`` and the stacked (npairs, 3, nsrc) results."""
    start = time.perf_counter()
    results = [np.array(fn(ref, est)[:3]) for ref, est in pairs]
    return (time.perf_counter() - start) / len(pairs), np.stack(results)


def mir_eval_scores(ref: np.ndarray, est: np.ndarray):
    import mir_eval.separation
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mir_eval.separation.bss_eval_sources(ref, est, compute_permutation=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=100, help="pairs timed for avsep")
    parser.add_argument("--mir-pairs", type=int, default=10, help="pairs timed for mir_eval")
    parser.add_argument("--nsrc", type=int, default=2)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    pairs = [make_pair(rng, args.nsrc) for _ in range(max(args.pairs, args.mir_pairs))]
    bss_eval_sources(*pairs[0])  # warm up FFT plans and BLAS threads

    ours_s, ours = time_per_pair(bss_eval_sources, pairs[:args.pairs])
    print(f"avsep.metrics.bss_eval_sources: {ours_s:.4f} s/pair "
          f"({args.pairs} pairs of {args.nsrc} x {NSAMPLES}, total {ours_s * args.pairs:.2f} s)")
    try:
        theirs_s, theirs = time_per_pair(mir_eval_scores, pairs[:args.mir_pairs])
    except ImportError:
        print("mir_eval not installed: skipping the comparison")
        return
    print(f"mir_eval.separation.bss_eval_sources: {theirs_s:.4f} s/pair ({args.mir_pairs} pairs)")
    print(f"speed-up: {theirs_s / ours_s:.1f}x")
    n = min(args.pairs, args.mir_pairs)
    diff = np.abs(ours[:n] - theirs[:n])
    print(f"max |difference| over {n} pairs (dB): SDR {diff[:, 0].max():.2e}, "
          f"SIR {diff[:, 1].max():.2e}, SAR {diff[:, 2].max():.2e}")


if __name__ == "__main__":
    main()
