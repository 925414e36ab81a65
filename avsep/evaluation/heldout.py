"""The two figures every generalization report shows side by side.

* **In distribution**: solo pairs of validation videos, whose backgrounds, melodies and
  soundfonts come from the same pools as training.
* **Held-out scenes**: solo pairs of videos from pools never seen in training (other
  photographs, new melodies, another soundfont), and generated duets of held-out scenes, where
  a click at the centre of each player must give that player's sound and the energy map must
  point at the players who are sounding.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from avsep.config import MODEL_POOLS
from avsep.evaluation.ensembles import score_clicks, score_pointing
from avsep.evaluation.evaluate import evaluate
from avsep.evaluation.localization import scene_interval, summarize_localization
from avsep.evaluation.tables import format_label_groups, label_group, label_group_rows


def evaluate_duets(checkpoint: str | Path, duets: list[dict], progress: bool = False, map_grid: str | None = None,
                   map_weighting: str = "loss", **query: Any) -> dict[str, Any]:
    """Clicks and pointing on generated duets: median click SDR, the mixture's, and pointing stats.
    ``map_grid`` is the grid of the energy maps that pointing scores (default: the model's, see
    :meth:`Separator.analyze`), ``map_weighting`` how they weigh the mixture's bins
    (:meth:`Analysis.energy_map`)."""
    from avsep.inference import Separator

    separator = Separator.from_checkpoint(checkpoint, device="cpu")
    sdr, mixture_sdr, cious, matched, per_duet, hits_per_duet = [], [], [], [], [], []
    gains_by_labels: dict[str, list[float]] = {}
    for entry in duets:
        analysis = separator.analyze(entry["video"], progress=False, map_grid=map_grid)
        clicks = score_clicks(analysis, entry, **query)
        pointing = score_pointing(analysis, entry, map_weighting)
        sdr += clicks["SDR"]
        mixture_sdr += clicks["mixture_SDR"]
        hits_per_duet.append(pointing["hit"])
        cious += pointing["ciou"]
        matched += pointing["matched"]
        gains_by_labels.setdefault(label_group(clicks["label"]), []).extend(
            float(s - m) for s, m in zip(clicks["SDR"], clicks["mixture_SDR"]))
        per_duet.append({"name": entry["name"], "labels": clicks["label"], "SDR": clicks["SDR"],
                         "mixture_SDR": clicks["mixture_SDR"], "pointing": float(np.mean(pointing["hit"] or [0]))})
        if progress:
            print(f"  {entry['name']}: " + ", ".join(f"{label} {s:.1f} dB (mixture {m:.1f})" for label, s, m in
                                                    zip(clicks["label"], clicks["SDR"], clicks["mixture_SDR"])))
    hits = [hit for duet in hits_per_duet for hit in duet]
    localization = summarize_localization(cious, hits, matched)
    if hits:
        localization["pointing_interval_90"] = list(scene_interval(hits_per_duet))
    return {"click_SDR_median": float(np.median(sdr)), "click_SDR_mean": float(np.mean(sdr)),
            "mixture_SDR_median": float(np.median(mixture_sdr)),
            "click_SDRi_median": float(np.median(np.array(sdr) - np.array(mixture_sdr))),
            "sources": len(sdr), "duets": len(duets), "localization": localization,
            "label_groups": label_group_rows(gains_by_labels), "per_duet": per_duet}


def generalization_report(checkpoint: str | Path, val_index: str | Path, heldout_index: str | Path,
                          duets: list[dict], pairs: int = 100, progress: bool = False,
                          report_dir: str | Path | None = None, **query: Any) -> dict[str, Any]:
    """In-distribution and held-out figures of one checkpoint (see the module docstring); an HTML
    report of the held-out pairs goes to ``report_dir`` if given. ``query`` (``map_grid``,
    ``map_weighting``, ``radius``, ``pool``) goes to the duets (:func:`evaluate_duets`); ``pool`` to the solo pairs too."""
    pool = query.get("pool") if query.get("pool") in MODEL_POOLS else None
    in_dist = evaluate(checkpoint, val_index, pairs=pairs, progress=progress, pool=pool)
    held_out = evaluate(checkpoint, heldout_index, pairs=pairs, oracle="ibm", progress=progress,
                        report_dir=report_dir, pool=pool)
    return {"in_distribution": in_dist, "held_out": held_out, "duets": evaluate_duets(checkpoint, duets, **query)}


TABLE_HEADER = f"{'median SDR (dB)':<34}{'model':>8}{'mixture':>10}{'gain':>9}{'SIR':>9}"


def click_row(duets: dict[str, Any], scenes: str = "duets") -> str:
    """The table row of an :func:`evaluate_duets` report (under :data:`TABLE_HEADER`)."""
    gain = duets["click_SDR_median"] - duets["mixture_SDR_median"]
    return (f"{'held-out ' + scenes + ', click a player':<34}{duets['click_SDR_median']:>8.2f}"
            f"{duets['mixture_SDR_median']:>10.2f}{gain:>+9.2f}{'':>9}   "
            f"({duets['sources']} players in {duets['duets']} {scenes})")


def click_details(duets: dict[str, Any], scenes: str = "duets") -> list[str]:
    """Pointing (when some window had a sounding player) and the median player's own gain."""
    loc, lines = duets["localization"], []
    if loc.get("count"):
        low, high = loc.get("pointing_interval_90", (loc["pointing"], loc["pointing"]))
        lines.append(f"pointing on held-out {scenes}: {loc['pointing']:.0%} of {loc['count']} windows "
                     f"(90% interval over {scenes} {low:.0%}-{high:.0%}); "
                     f"cIoU@0.5 {loc['cIoU@0.5']:.2f}, AUC {loc['AUC']:.2f}, size-matched cIoU {loc['size_matched_cIoU']:.2f}")
    lines.append(f"median gain of each player's click {duets['click_SDRi_median']:+.2f} dB "
                 "(the gain of the median above is the issue's figure; this one is per player)")
    return lines


def format_report(report: dict[str, Any]) -> str:
    """The report as a short table: medians in dB, the gain over the mixture, and pointing."""
    def solo(name: str, summary: dict) -> str:
        model, mix = summary["model"]["SDR"]["median"], summary["mixture"]["SDR"]["median"]
        sir = summary["model"]["SIR"]["median"]
        return (f"{name:<34}{model:>8.2f}{mix:>10.2f}{model - mix:>+9.2f}{sir:>9.2f}   "
                f"({summary['mixtures_scored']} mixtures, {summary['videos']} videos)")

    duets = report["duets"]
    lines = [TABLE_HEADER,
             solo("in distribution (validation)", report["in_distribution"]),
             solo("held-out scenes, solo pairs", report["held_out"]),
             click_row(duets),
             f"{'ideal binary mask, held-out pairs':<34}{report['held_out']['oracle_ibm']['SDR']['median']:>8.2f}",
             *click_details(duets)]
    if report["held_out"].get("label_groups"):
        lines.append(format_label_groups(report["held_out"]["label_groups"], "sources of held-out solo pairs"))
    if duets.get("label_groups"):
        lines.append(format_label_groups(duets["label_groups"], "clicked players of held-out duets"))
    return "\n".join(lines)
