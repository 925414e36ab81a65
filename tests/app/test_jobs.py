"""What the app's analysis job hands the page: the heat maps' scaling."""
import base64

import numpy as np

from avsep.app.jobs import heat_maps
from tests.inference.test_analysis import clip, sharp_separator


def test_heat_maps_stretch_the_sounding_moments_and_leave_silence_dark(tmp_path):
    video = clip(seconds=6)
    video.audio[int(3.0 * video.sample_rate):] *= 1e-4      # half the video at about -80 dBFS
    analysis = sharp_separator(tmp_path).analyze(video, progress=False)
    page = heat_maps(analysis)
    times = np.array(page["times"])
    maps = np.frombuffer(base64.b64decode(page["data"]), np.uint8).reshape(len(times), page["rows"], page["cols"])
    silent, sounding = maps[times >= 3.6], maps[times <= 2.4]
    assert len(silent) and len(sounding) and not silent.any()
    # The silent half must not set the low end: the sounding maps span the whole scale.
    assert sounding.min() == 0 and sounding.max() == 255
