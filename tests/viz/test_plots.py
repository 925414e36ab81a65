import numpy as np

from avsep.viz.plots import _ticks, line_chart, smooth, training_curves


def test_smooth_is_a_running_mean():
    values = [1.0, 3.0, 5.0, 7.0]
    assert np.allclose(smooth(values, window=2), [1.0, 2.0, 4.0, 6.0])
    assert len(smooth([])) == 0


def test_ticks_are_round_and_inside_the_range():
    ticks = _ticks(0.13, 0.92)
    assert ticks[0] >= 0.13 and ticks[-1] <= 0.92 and 3 <= len(ticks) <= 6
    assert all(abs(t * 10 - round(t * 10)) < 1e-9 for t in ticks)


def test_chart_draws_lines_and_skips_nan():
    image = line_chart({"a": ([0, 1, 2], [0.0, float("nan"), 2.0])}, "title", "step")
    assert image.size == (480, 300)
    colours = {c for _, c in image.getcolors(100000)}
    assert (31, 119, 180) in colours  # the first series' colour was drawn
    empty = line_chart({"a": ([], [])}, "title", "step")
    assert (31, 119, 180) not in {c for _, c in empty.getcolors(100000)}


def test_training_curves_side_by_side():
    image = training_curves(list(range(1, 51)), list(np.linspace(1, 0.2, 50)), [10, 50], [1.0, 6.0])
    assert image.size == (960, 300)
