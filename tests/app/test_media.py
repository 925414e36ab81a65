"""Checking an uploaded video: whether the page can play it as it is."""
from avsep.app.media import check_video
from tests.data.test_decode import make_video, needs_rotation_writer

HFLIP = (-1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30)   # a horizontal mirror, FFmpeg's layout


@needs_rotation_writer
def test_a_mirrored_video_gets_a_copy_rather_than_playing_as_it_is(tmp_path):
    # Not every browser mirrors by the display matrix: the page would show the mirror image of
    # the frames analysed, so a click would land on the other side.
    plain = check_video(make_video(tmp_path / "plain.mp4", seconds=1), "plain.mp4", 0)
    mirrored = check_video(make_video(tmp_path / "mirrored.mp4", seconds=1, matrix=HFLIP), "mirrored.mp4", 0)
    assert plain["playable"] and not plain["mirrored"]
    assert mirrored["mirrored"] and not mirrored["playable"]
