"""Scoring clicks and heatmaps on scenes with ground truth: generated duets, trios and quartets.

Each scene comes with one stem and one box per frame for every player (``avsep generate duets``).
A click at the centre of a player's box must give that player's stem (SDR against the stem,
beside the SDR of the unprocessed mixture), and the sound-energy map's peak must fall inside the
box of a player who is sounding at that moment (pointing).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from avsep.data.decode import load_audio
from avsep.evaluation.localization import box_mask, map_peak, median_ciou, pointing_hit, size_matched_ciou
from avsep.evaluation.scoring import score_mixture

SOUNDING_DBFS = -50.0   # a stem louder than this over the half second around t is sounding at t


def box_at(source: dict, time: float, fps: float) -> list[float]:
    """A player's box at ``time`` seconds (its per-frame boxes, or its one box)."""
    boxes = source.get("boxes") or [source["box"]]
    return list(boxes[min(len(boxes) - 1, max(0, int(round(time * fps))))])


def centre_of(box: list[float]) -> tuple[float, float]:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def load_stems(entry: dict, rate: int, length: int) -> np.ndarray:
    """The scene's stems at ``rate``, cut or padded to ``length``: (N, length) float64."""
    stems = []
    for source in entry["sources"]:
        audio = load_audio(source["stem"], rate)[:length]
        stems.append(np.pad(audio, (0, length - len(audio))))
    return np.stack(stems).astype(np.float64)


def score_clicks(analysis, entry: dict, **query: Any) -> dict[str, list]:
    """Click the centre of each player's box (at the middle of the scene) and score what comes out.

    Returns per player ``label``, ``point``, ``SDR`` and ``mixture_SDR`` (dB against its stem).
    ``query`` goes to :meth:`Analysis.separate` (``pool``, ``radius``).
    """
    fps, middle = float(entry["fps"]), entry["seconds"] / 2
    mix = analysis.input_mixture.astype(np.float64)
    stems = load_stems(entry, analysis.input_rate, len(mix))
    points = [centre_of(box_at(source, middle, fps)) for source in entry["sources"]]
    estimates = np.stack([analysis.separate(point=point, **query) for point in points])
    scores = score_mixture(stems, {"model": estimates}, mix)
    return {"label": [s["label"] for s in entry["sources"]], "point": points,
            "SDR": scores["model"]["SDR"], "mixture_SDR": scores["mixture"]["SDR"]}


def sounding(stems: np.ndarray, rate: int, time: float) -> np.ndarray:
    """(N,) whether each stem is above :data:`SOUNDING_DBFS` in the half second around ``time``."""
    first, last = max(0, int((time - 0.25) * rate)), int((time + 0.25) * rate)
    level = 10 * np.log10(np.mean(stems[:, first:last] ** 2, axis=1) + 1e-12)
    return level > SOUNDING_DBFS


def score_pointing(analysis, entry: dict, weighting: str = "loss") -> dict[str, list]:
    """At every window centre where some player sounds: does the energy map (its bins weighted by
    ``weighting``, see :meth:`Analysis.energy_map`) point at one of them?

    Returns ``hit`` (pointing), ``ciou`` (median-threshold cIoU) and ``matched`` (size-matched
    cIoU), one value per scored moment (``time``), against the boxes of the players sounding then;
    ``chance``, the share of the frame those boxes cover: how often a peak put at random would hit;
    and ``peak``, the map's ``(row, col)``, for asking where a miss landed.
    """
    fps = float(entry["fps"])
    stems = load_stems(entry, analysis.input_rate, len(analysis.input_mixture))
    out: dict[str, list] = {"time": [], "hit": [], "ciou": [], "matched": [], "chance": [], "peak": []}
    for time in analysis.window_centres():
        if time >= entry["seconds"] - 0.25:
            continue
        active = sounding(stems, analysis.input_rate, time)
        if not active.any():
            continue
        boxes = [box_at(s, time, fps) for s, on in zip(entry["sources"], active) if on]
        heat = analysis.energy_map(time, weighting=weighting)
        out["time"].append(float(time))
        out["hit"].append(pointing_hit(heat, boxes))
        out["ciou"].append(median_ciou(heat, boxes))
        out["matched"].append(size_matched_ciou(heat, boxes))
        out["chance"].append(float(box_mask(boxes, heat.shape).mean()))
        out["peak"].append(map_peak(heat))
    return out
