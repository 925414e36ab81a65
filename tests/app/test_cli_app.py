"""``avsep app`` as a user runs it: it prints its URL, serves, and leaves no temporary file behind
when it is stopped with Ctrl-C or SIGTERM; and a video browsers cannot play gets a copy they can."""
import json
import os
import signal
import subprocess
import urllib.request
from fractions import Fraction

import av
import numpy as np
import pytest

from tests.app.helpers import two_tone_video
from tests.app.test_server import analysed
from tests.conftest import PYTHON


def test_app_is_a_subcommand_and_checks_its_arguments(tmp_path):
    result = subprocess.run([PYTHON, "-m", "avsep", "--help"], capture_output=True, text=True, timeout=120)
    assert "app" in result.stdout and "click a playing video" in result.stdout
    result = subprocess.run([PYTHON, "-m", "avsep", "app", "--checkpoint", str(tmp_path / "none.pt")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.strip().endswith("none.pt: no such file")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("stop, host", [(signal.SIGTERM, "0.0.0.0"), (signal.SIGINT, "127.0.0.1")])
def test_stopping_the_app_removes_its_temporary_files(tiny_app_checkpoint, tmp_path, stop, host):
    temp = tmp_path / "temp"
    temp.mkdir()
    process = subprocess.Popen([PYTHON, "-m", "avsep", "app", "--checkpoint", str(tiny_app_checkpoint), "--port", "0",
                                "--host", host, "--no-detect", "--device", "cpu"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(temp)},
                               # Started with SIGINT ignored, as a script's background job is: the app
                               # must still stop on it.
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        line = process.stdout.readline()
        assert line.startswith("avsep app: open http://127.0.0.1:"), line + process.stderr.read()
        url = line.split()[3]
        video = two_tone_video(tmp_path / "clip.mp4", seconds=2.0)
        request = urllib.request.Request(url + "api/upload?name=clip.mp4", data=video.read_bytes(), method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            assert json.loads(response.read())["video"]["name"] == "clip.mp4"
        assert list(temp.glob("avsep-app-*/uploads/*/clip.mp4"))
        process.send_signal(stop)
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    stderr = process.stderr.read()
    assert list(temp.iterdir()) == [], "the app's temporary folder is removed when it stops"
    assert ("reachable from other machines" in stderr) == (host == "0.0.0.0")


def write_avi(path, seconds=2.0, size=(96, 64), fps=8, rate=22050):
    """An MPEG-4 part 2 video in AVI: decodable, but no browser plays it."""
    with av.open(str(path), "w", format="avi") as out:
        video = out.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        sound = out.add_stream("pcm_s16le", rate=rate, layout="mono")
        for k in range(int(seconds * fps)):
            pixels = np.full((size[1], size[0], 3), (40 * k) % 255, dtype=np.uint8)
            out.mux(video.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
            t = (np.arange(rate // fps) + k * (rate // fps)) / rate
            samples = (0.2 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)[None]
            chunk = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
            chunk.sample_rate, chunk.pts, chunk.time_base = rate, k * (rate // fps), Fraction(1, rate)
            out.mux(sound.encode(chunk))
        out.mux(video.encode(None))
        out.mux(sound.encode(None))
    return path


def test_a_video_browsers_cannot_play_is_shown_from_an_h264_copy(running_app, tmp_path):
    app = running_app
    avi = write_avi(tmp_path / "old.avi")
    status, answer = app.client.json("/api/upload?name=old.avi", data=avi.read_bytes())
    assert status == 200, answer
    vid = answer["video"]["id"]
    analysed(app, vid)
    status, headers, body = app.client.request(f"/media/{vid}")
    assert status == 200 and headers["Content-Type"] == "video/mp4"
    copy = tmp_path / "copy.mp4"
    copy.write_bytes(body)
    with av.open(str(copy)) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert (container.streams.video[0].width, container.streams.video[0].height) == (96, 64)
