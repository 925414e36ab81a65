"""Evaluation summaries as text tables, report rows and strict JSON."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from avsep.evaluation.scoring import FLOOR_DB, METRICS

# What each system of a summary is, as printed under the table.
SYSTEMS = {
    "model": "the model's soft masks (avsep's protocol)",
    "model_binary": "the model's masks thresholded at 0.5 (the original Sound of Pixels protocol)",
    "mixture": "the unprocessed mixture for every source (baseline)",
    "oracle_ibm": "ideal binary masks (upper bound)",
    "oracle_irm": "ideal ratio masks (upper bound)",
}


def systems_of(summary: dict[str, Any]) -> list[str]:
    return [s for s in SYSTEMS if s in summary]


def summary_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per system: metric mean / median, in dB."""
    rows = []
    for system in systems_of(summary):
        row: dict[str, Any] = {"system": system}
        for metric in METRICS:
            stats = summary[system][metric]
            row[f"{metric} mean"], row[f"{metric} median"] = round(stats["mean"], 2), round(stats["median"], 2)
        rows.append(row)
    return rows


def counts_line(summary: dict[str, Any]) -> str:
    """Every count behind the figures: sources, mixtures, silent estimates and skips."""
    parts = [f"{summary['sources_scored']} sources in {summary['mixtures_scored']} mixtures"]
    if "mixtures" in summary:
        parts[0] += (f" of {summary['num_mix']} (distinct mixtures: {summary['mixtures']}, asked for "
                     f"{summary['mixtures_requested']}; {summary['videos']} videos of {summary['labels']} labels)")
    skipped = summary.get("mixtures_skipped") or {}
    parts.append("skipped: " + (", ".join(f"{n} ({why})" for why, n in skipped.items()) if skipped else "none"))
    silent = summary.get("silent_estimates") or {}
    parts.append("silent estimates (scored " + f"{FLOOR_DB:g} dB): "
                 + ", ".join(f"{system} {silent.get(system, 0)}" for system in systems_of(summary)))
    if summary.get("train_overlap"):
        parts.append(f"WARNING: {summary['train_overlap']} test videos were seen in training")
    return "\n".join(parts)


def format_table(summary: dict[str, Any]) -> str:
    """A plain-text table of mean/median per metric and system, in dB, with its legend and counts."""
    header = f"{'system':<14}" + "".join(f"{m + ' mean/median':>22}" for m in METRICS)
    lines = [header, "-" * len(header)]
    for row in summary_rows(summary):
        cells = "".join(f"{row[f'{m} mean']:>11.2f}/{row[f'{m} median']:<10.2f}" for m in METRICS)
        lines.append(f"{row['system']:<14}{cells}")
    lines += [f"  {system}: {SYSTEMS[system]}" for system in systems_of(summary)]
    lines.append(counts_line(summary))
    if summary.get("label_groups"):
        lines.append(format_label_groups(summary["label_groups"]))
    return "\n".join(lines)


def label_group(labels: Sequence[str]) -> str:
    """The key of a mixture's labels, whatever their order: ``"flute + violin"``."""
    return " + ".join(sorted(labels))


def label_group_rows(gains: dict[str, list[float]]) -> list[dict[str, Any]]:
    """One row per group of labels mixed together, worst first: the median SDR gain over the
    mixture (dB) of the sources scored in such mixtures, and how many there were.

    A median over all mixtures can hide a pair of instruments that is never separated (two
    melodic instruments of one register, say) behind the pairs that are; this shows it.
    """
    rows = [{"labels": group, "sources": len(values), "SDRi median": round(float(np.median(values)), 2)}
            for group, values in gains.items()]
    return sorted(rows, key=lambda row: (row["SDRi median"], row["labels"]))


def format_label_groups(rows: list[dict[str, Any]], what: str = "sources") -> str:
    """The rows of :func:`label_group_rows` as one line each."""
    lines = [f"median SDR gain over the mixture by the labels mixed, worst first ({what}):"]
    lines += [f"  {row['labels']:<36}{row['SDRi median']:>+8.2f} dB   ({row['sources']} {what})" for row in rows]
    return "\n".join(lines)


def json_safe(value: Any) -> Any:
    """NaN and infinities become null, so the output is strict JSON."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
