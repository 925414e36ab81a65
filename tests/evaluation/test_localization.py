"""Localization metrics on maps whose answers are known."""
import numpy as np
import pytest

from avsep.evaluation.localization import (box_mask, ciou, inside_any, map_peak, median_ciou, pointing_hit, scene_interval,
                                           size_matched_ciou, summarize_localization)


def test_box_mask_is_the_union_with_exclusive_ends():
    mask = box_mask([[1, 1, 3, 2], [2, 0, 4, 1]], (3, 5))
    assert mask.tolist() == [[False, False, True, True, False],
                             [False, True, True, False, False],
                             [False, False, False, False, False]]


def test_ciou_of_perfect_and_disjoint_predictions():
    gt = box_mask([[0, 0, 2, 2]], (4, 4))
    assert ciou(gt, gt) == 1.0 and ciou(~gt, gt) == 0.0
    # Twice the area, all of gt: cIoU = 4 / (4 + 4) = 0.5.
    assert ciou(box_mask([[0, 0, 4, 2]], (4, 4)), gt) == pytest.approx(0.5)


def test_median_threshold_caps_ciou_for_small_boxes():
    heat = np.zeros((100, 100))
    heat[10:52, 10:52] = 1.0  # a perfect map of a box covering 18% of the frame
    box = [[10, 10, 52, 52]]
    assert size_matched_ciou(heat, box) == pytest.approx(1.0)
    # Half the pixels pass the median threshold: cIoU = 0.176 / 0.5, far from 1.
    assert median_ciou(heat + 1e-6 * np.random.default_rng(0).random((100, 100)), box) < 0.4
    assert pointing_hit(heat, box) and not pointing_hit(heat, [[60, 60, 90, 90]])


def test_the_peak_is_row_then_column_and_the_first_of_ties():
    heat = np.zeros((4, 6))
    heat[1, 4] = heat[3, 0] = 2.0
    assert map_peak(heat) == (1, 4)
    assert pointing_hit(heat, [[4, 1, 5, 2]]) and not pointing_hit(heat, [[0, 3, 1, 4]])  # boxes are x then y
    assert inside_any((1, 4), [[4, 1, 5, 2]]) and not inside_any((1, 5), [[4, 1, 5, 2]])  # right edge excluded


def test_summary_auc_and_rates():
    summary = summarize_localization([0.0, 0.5, 1.0, 1.0], [True, False, True, True], [0.2, 0.4, 0.6, 0.8])
    assert summary["cIoU@0.5"] == 0.75 and summary["pointing"] == 0.75 and summary["count"] == 4
    assert summary["size_matched_cIoU"] == pytest.approx(0.5)
    # Share of cIoU >= t: 1 at t = 0, 0.75 up to 0.5, 0.5 above: area 0.05 * ... in between.
    assert 0.6 < summary["AUC"] < 0.8
    assert summarize_localization([], [], []) == {"count": 0}


def test_scene_interval_resamples_whole_scenes():
    # Every scene at the same rate: any resampling gives that rate.
    assert scene_interval([[True, False]] * 6) == (0.5, 0.5)
    # Scenes hit or missed whole: the interval is wide, contains the rate, and narrows with more scenes.
    few = scene_interval([[True] * 5] * 3 + [[False] * 5] * 2)
    many = scene_interval([[True] * 5] * 30 + [[False] * 5] * 20)
    assert few[0] < 0.6 < few[1] and many[0] < 0.6 < many[1]
    assert many[1] - many[0] < few[1] - few[0]
    # The same windows split into independent scenes would give a narrower interval than whole scenes.
    windows = scene_interval([[True]] * 15 + [[False]] * 10)
    assert windows[1] - windows[0] < few[1] - few[0]
    # Seeded: one set of hits, one interval; scenes without windows are left out.
    assert scene_interval([[True, False], [True], []]) == scene_interval([[True, False], [True]])
    with pytest.raises(ValueError, match="no scored windows"):
        scene_interval([[], []])
