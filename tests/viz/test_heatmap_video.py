"""The heatmap video's frames: each frame shows the map of its own moment, made once a quarter second."""
import numpy as np
from PIL import Image

from avsep.viz.heatmap_video import MAP_REFRESH_HZ, heatmap_frames


class RecordingAnalysis:
    """An analysis whose map at t is uniform with value t / 10, and which records when maps are made.
    Its analysed frames are 0.5 s apart and its audio windows 3 s long."""
    frame_size = (32, 24)

    def __init__(self):
        self.asked = []

    def frame_and_window(self, time):
        return int(time * 2), int(time // 3)

    def energy_map(self, time, resolution="frame"):
        self.asked.append(time)
        return np.full((3, 4), time / 10, dtype=np.float32)


def _frames(fps=8, seconds=2.0):
    return [(i / fps, Image.new("RGB", (32, 24), (0, 0, 0))) for i in range(int(seconds * fps))]


def test_maps_follow_time_within_one_frame_and_window():
    analysis = RecordingAnalysis()
    images = list(heatmap_frames(analysis, _frames()))
    assert len(images) == 16 and images[0].shape == (24, 32, 3)
    # 2 s at 8 fps: a new map every quarter second (8), not one per analysed frame and window (4)
    assert len(analysis.asked) == int(2.0 * MAP_REFRESH_HZ)
    assert all(b - a <= 1 / MAP_REFRESH_HZ + 1e-9 for a, b in zip(analysis.asked, analysis.asked[1:]))
    assert (images[0] != images[-1]).any(), "the overlay changes as the map does"


def test_frames_of_the_same_quarter_second_share_their_map():
    analysis = RecordingAnalysis()
    images = list(heatmap_frames(analysis, _frames(fps=8, seconds=0.25)))
    assert analysis.asked == [0.0] and (images[0] == images[1]).all()
