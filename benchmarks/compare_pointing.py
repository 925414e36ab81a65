"""Did run A point better than run B on the same duets? A paired comparison, duet by duet.

    python benchmarks/compare_pointing.py /tmp/gen/runs/bf16_sparse/generalization_last.json \\
        /tmp/gen/runs/ctl_s0/generalization_last.json

Reads the per-duet pointing rates that ``bench_generalization.py`` saves (``duets.per_duet``) for
two runs scored on the same duets, and prints the mean difference in points with a 90% interval
that resamples duets (a model misses a duet's windows together, so duets, not windows, are the
independent units), and how many duets each run pointed better on.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def per_duet(path: Path) -> tuple[dict[str, float], str]:
    """The pointing rate of every duet in a generalization report, by duet name, and how its
    energy maps weighed the mixture's bins (reports before 2026-12-06 record none: power)."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        rows = report["duets"]["per_duet"]
    except FileNotFoundError:
        raise SystemExit(f"compare_pointing: {path}: no such file") from None
    except (KeyError, TypeError, json.JSONDecodeError):
        raise SystemExit(f"compare_pointing: {path}: not a generalization report with duets.per_duet") from None
    weighting = report.get("run", {}).get("map_weighting", "power")
    return {row["name"]: float(row["pointing"]) for row in rows}, weighting


def paired_difference(a: np.ndarray, b: np.ndarray, rounds: int = 4000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``a - b`` and its 90% bootstrap interval over the paired items."""
    diff = a - b
    picks = np.random.default_rng(seed).integers(0, len(diff), size=(rounds, len(diff)))
    means = diff[picks].mean(axis=1)
    return float(diff.mean()), float(np.quantile(means, 0.05)), float(np.quantile(means, 0.95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_a", type=Path, help="generalization*.json of run A")
    parser.add_argument("run_b", type=Path, help="generalization*.json of run B, scored on the same duets")
    args = parser.parse_args()
    (a, weighting_a), (b, weighting_b) = per_duet(args.run_a), per_duet(args.run_b)
    if weighting_a != weighting_b:
        raise SystemExit(f"compare_pointing: the two reports' maps weigh bins differently ({weighting_a} and "
                         f"{weighting_b}): rescore one with bench_generalization.py --map-weighting")
    names = sorted(set(a) & set(b))
    if len(names) < 2 or len(names) != len(a) or len(names) != len(b):
        raise SystemExit(f"compare_pointing: the two reports must score the same duets ({len(a)} and {len(b)} duets, "
                         f"{len(names)} shared)")
    rate_a, rate_b = np.array([a[n] for n in names]), np.array([b[n] for n in names])
    mean, low, high = paired_difference(rate_a, rate_b)
    print(f"{len(names)} duets: A {rate_a.mean():.0%}, B {rate_b.mean():.0%}; A - B {100 * mean:+.1f} points "
          f"(90% interval over duets {100 * low:+.1f} to {100 * high:+.1f}); A better on "
          f"{int((rate_a > rate_b).sum())} duets, B on {int((rate_b > rate_a).sum())}")


if __name__ == "__main__":
    main()
