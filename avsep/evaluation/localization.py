"""Localization metrics: how well a sound-energy map points at the objects that sound.

* **cIoU (the LVS / EZ-VSL protocol).** The map is min-max normalised and thresholded at its
  median; cIoU = |pred & gt| / (|gt| + |pred outside gt|), where gt is the union of the boxes.
  A dataset reports cIoU@0.5 (the share of maps with cIoU >= 0.5) and the AUC of that share
  over thresholds 0, 0.05, ..., 1.
* The median threshold keeps half of the pixels, which caps cIoU near 2 * area when boxes cover
  a small part of the frame (about 0.36 for boxes of 18%). So two more:
  **pointing** (the map's peak falls inside a box) and **size-matched cIoU** (the map's top-k
  pixels, k the boxes' area, against the boxes).

Maps are (H, W) arrays at the frame's resolution; boxes are (x0, y0, x1, y1) pixels, x1/y1
exclusive.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

THRESHOLDS = np.round(np.arange(0.0, 1.0001, 0.05), 2)


def box_mask(boxes: Sequence[Sequence[float]], shape: tuple[int, int]) -> np.ndarray:
    """The union of boxes as a boolean (H, W) map."""
    height, width = shape
    gt = np.zeros(shape, dtype=bool)
    for x0, y0, x1, y1 in boxes:
        gt[max(0, int(round(y0))):min(height, int(round(y1))), max(0, int(round(x0))):min(width, int(round(x1)))] = True
    return gt


def normalise(heat: np.ndarray) -> np.ndarray:
    """Min-max normalisation to [0, 1] (a flat map becomes all zeros)."""
    heat = np.asarray(heat, dtype=np.float64)
    span = heat.max() - heat.min()
    return (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)


def ciou(pred: np.ndarray, gt: np.ndarray) -> float:
    """Consensus IoU of a binary prediction and a binary ground truth, both (H, W)."""
    inside = float(np.sum(pred & gt))
    return inside / max(float(gt.sum()) + float(np.sum(pred & ~gt)), 1e-12)


def median_ciou(heat: np.ndarray, boxes: Sequence[Sequence[float]]) -> float:
    """cIoU of the map thresholded at the median of its normalised values (LVS / EZ-VSL)."""
    norm = normalise(heat)
    return ciou(norm >= np.median(norm), box_mask(boxes, norm.shape))


def size_matched_ciou(heat: np.ndarray, boxes: Sequence[Sequence[float]]) -> float:
    """cIoU of the map's top-k pixels, k the area of the boxes."""
    gt = box_mask(boxes, np.shape(heat))
    k = int(gt.sum())
    if k == 0:
        return 0.0
    flat = np.asarray(heat, dtype=np.float64).ravel()
    pred = np.zeros(flat.shape, dtype=bool)
    pred[np.argsort(-flat, kind="stable")[:k]] = True
    return ciou(pred.reshape(gt.shape), gt)


def map_peak(heat: np.ndarray) -> tuple[int, int]:
    """``(row, col)`` of the map's largest value (the first one, where several tie)."""
    row, col = np.unravel_index(int(np.argmax(heat)), np.shape(heat))
    return int(row), int(col)


def inside_any(point: tuple[int, int], boxes: Sequence[Sequence[float]]) -> bool:
    """Whether the pixel ``(row, col)`` lies inside any of the ``(x1, y1, x2, y2)`` boxes."""
    row, col = point
    return any(x0 <= col < x1 and y0 <= row < y1 for x0, y0, x1, y1 in boxes)


def pointing_hit(heat: np.ndarray, boxes: Sequence[Sequence[float]]) -> bool:
    """Whether the map's peak falls inside any of the boxes."""
    return inside_any(map_peak(heat), boxes)


def summarize_localization(cious: Sequence[float], hits: Sequence[bool], matched: Sequence[float]) -> dict:
    """cIoU@0.5, AUC over thresholds 0..1 step 0.05, mean cIoU, pointing rate and size-matched cIoU."""
    values = np.asarray(cious, dtype=np.float64)
    if values.size == 0:
        return {"count": 0}
    share = np.array([(values >= t).mean() for t in THRESHOLDS])
    auc = float(np.sum((share[1:] + share[:-1]) / 2 * np.diff(THRESHOLDS)))
    return {"count": int(values.size), "cIoU@0.5": float((values >= 0.5).mean()), "AUC": auc,
            "mean_cIoU": float(values.mean()), "pointing": float(np.mean(hits)),
            "size_matched_cIoU": float(np.mean(matched))}


def scene_interval(hits_per_scene: Sequence[Sequence[bool]], level: float = 0.9, rounds: int = 2000,
                   seed: int = 0) -> tuple[float, float]:
    """A bootstrap interval of the pointing rate that resamples whole scenes (videos), not windows.

    A model misses a scene's windows together (the peak rests on one wrong place for the whole
    clip), so the windows of a scene are not independent: with 12 scenes, one scene moves the
    rate by about 8 points. Returns the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of
    the rate (all hits over all windows) over ``rounds`` resamplings, seeded, so one set of hits
    always gives one interval.
    """
    scenes = [np.asarray(h, dtype=np.float64) for h in hits_per_scene if len(h)]
    if not scenes:
        raise ValueError("no scored windows to resample")
    hits, windows = np.array([s.sum() for s in scenes]), np.array([s.size for s in scenes])
    picks = np.random.default_rng(seed).integers(0, len(scenes), size=(rounds, len(scenes)))
    rates = hits[picks].sum(axis=1) / windows[picks].sum(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(rates, tail)), float(np.quantile(rates, 1 - tail))
