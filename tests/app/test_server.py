"""The app's HTTP server with a tiny model: routes, uploads, limits, the queue and cleanup."""
import http.client
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from avsep.app.jobs import AnalysisQueue
from avsep.data.decode import read_wav
from avsep.errors import AvsepError
from tests.app.helpers import two_tone_video


def analysed(app, video_id: str, timeout: float = 60.0) -> dict:
    status, answer = app.client.json(f"/api/analyze?video={video_id}", data=b"")
    assert status == 200, answer
    deadline = time.monotonic() + timeout
    while answer["state"] not in ("done", "error"):
        assert time.monotonic() < deadline, answer
        time.sleep(0.05)
        answer = app.client.json(f"/api/status?video={video_id}")[1]
    assert answer["state"] == "done", answer
    status, info = app.client.json(f"/api/analysis?video={video_id}")
    assert status == 200
    return info


def folder_video(app) -> str:
    status, answer = app.client.json("/api/videos")
    assert status == 200
    (video,) = [v for v in answer["videos"] if v["name"] == "tones.mp4"]   # notes.txt is not listed
    return video["id"]


def test_the_page_and_its_files_come_from_this_server_only(running_app):
    status, headers, body = running_app.client.request("/")
    assert status == 200 and b'src="/static/app.js"' in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert b"http://" not in body and b"https://" not in body   # no CDN
    for name in ("app.js", "audio.js", "draw.js", "app.css"):
        status, _, body = running_app.client.request(f"/static/{name}")
        assert status == 200 and b"https://" not in body
    for path in ("/static/../server.py", "/static/%2e%2e/server.py", "/static/server.py", "/media/..%2f..%2fetc%2fpasswd",
                 "/media/f000000000000", "/etc/passwd", "/api/nothing"):
        status, _, body = running_app.client.request(path)
        assert status in (400, 404) and b"root:" not in body, path


def test_analysis_heatmaps_audio_and_downloads(running_app):
    app = running_app
    vid = folder_video(app)
    info = analysed(app, vid)
    assert info["frame"] == [256, 128] and info["rate"] == 22050 and abs(info["duration"] - 4.0) < 0.1
    heat = info["heat"]
    assert len(heat["times"]) >= 8 and heat["rows"] * heat["cols"] > 1
    assert info["objects"] == [] and "--no-detect" in info["objects_note"]
    status, headers, body = app.client.request(f"/api/audio?video={vid}&region=point:60,64&mode=spot&first=22050&count=44100")
    assert status == 200 and headers["Content-Type"] == "audio/wav"
    assert (headers["X-Avsep-First"], headers["X-Avsep-Last"], headers["X-Avsep-Rate"]) == ("22050", "66150", "22050")
    assert "query;dur=" in headers["Server-Timing"] and len(body) == 44 + 2 * 44100
    # the whole stem as a download, named after the video, the mode and the region
    status, headers, body = app.client.request(f"/api/stem.wav?video={vid}&region=box:0,0,128,128&mode=residual")
    assert status == 200 and 'filename="tones_residual_box_0_0_128_128.wav"' in headers["Content-Disposition"]
    path = Path(app.workdir) / "check.wav"
    path.write_bytes(body)
    assert abs(len(read_wav(path)) - 4 * 22050) < 1000 and np.abs(read_wav(path)).max() > 0
    # a video range, as the <video> element asks for when seeking
    status, headers, body = app.client.request(f"/media/{vid}", headers={"Range": "bytes=10-19"})
    assert status == 206 and len(body) == 10 and headers["Content-Range"].startswith("bytes 10-19/")


@pytest.mark.parametrize("query, message", [
    ("region=point:600,10", "outside the 256x128 frame"),
    ("region=box:10,10,5,20", "is empty"),
    ("region=track:3", "no such tracked object"),
    ("region=circle:1,2", "expected point:X,Y, box:X0,Y0,X1,Y1 or track:N"),
    ("region=track:inf", "expected point:X,Y, box:X0,Y0,X1,Y1 or track:N"),
    ("region=point:nan,3", "expected point:X,Y, box:X0,Y0,X1,Y1 or track:N"),
    ("region=point:1,2&mode=loud", "mode='loud'"),
    ("mode=spot", "click the video"),
    ("region=point:1,2&first=nan", "first='nan': expected a number"),
    ("region=point:1,2&count=-5", "count positive"),
])
def test_bad_queries_get_one_line_messages(running_app, query, message):
    vid = folder_video(running_app)
    analysed(running_app, vid)
    status, answer = running_app.client.json(f"/api/audio?video={vid}&{query}")
    assert status == 400 and message in answer["error"] and "\n" not in answer["error"]


def test_audio_of_a_video_not_analysed_is_refused(running_app):
    status, answer = running_app.client.json(f"/api/audio?video={folder_video(running_app)}&mode=original")
    assert status == 400 and "not analysed" in answer["error"]
    status, answer = running_app.client.json("/api/status?video=unknown")
    assert answer == {"state": "none"}


def test_uploads_are_checked_limited_and_named_safely(running_app, tmp_path, caplog):
    app = running_app
    status, answer = app.client.json("/api/upload?name=notes.txt", data=b"just some text, not a video")
    assert status == 400 and answer["error"] == "notes.txt is not a video that can be decoded (is it a video file?)"
    assert "upload refused: notes.txt is not a video" in caplog.text
    # too large: refused from its Content-Length, before any of the body is read
    host, port = app.server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=30)
    connection.putrequest("POST", "/api/upload?name=big.mp4")
    connection.putheader("Content-Length", str(3 * 2 ** 20))
    connection.endheaders()
    response = connection.getresponse()
    assert response.status == 413 and "big.mp4 is 3.0 MB; uploads are limited to 2 MB (--max-upload-mb)" in \
        json.loads(response.read())["error"]
    connection.close()
    silent = tmp_path / "picture_only.mp4"
    from avsep.data.encode import write_mp4
    write_mp4(silent, (np.zeros((64, 64, 3), np.uint8) for _ in range(8)), (64, 64), 8, None, 22050, 8)
    status, answer = app.client.json("/api/upload?name=picture_only.mp4", data=silent.read_bytes())
    assert status == 400 and "has no audio stream" in answer["error"]
    # the server keeps serving, and nothing of the refused files is left
    assert app.client.json("/api/videos")[0] == 200
    assert not any((Path(app.workdir) / "uploads").iterdir())
    good = two_tone_video(tmp_path / "good.mp4", seconds=3.0)
    status, answer = app.client.json("/api/upload?name=..%2F..%2Fgood%20clip.mp4", data=good.read_bytes())
    assert status == 200 and answer["video"]["name"] == "good_clip.mp4"
    saved = list((Path(app.workdir) / "uploads").rglob("*.mp4"))
    assert [p.name for p in saved] == ["good_clip.mp4"]
    assert analysed(app, answer["video"]["id"])["frame"] == [256, 128]


def test_other_host_names_are_refused(running_app):
    status, answer = running_app.client.json("/api/videos", headers={"Host": "attacker.example:80"})
    assert status == 403 and "own host name" in answer["error"]


def test_too_long_videos_are_refused_before_analysis(running_app):
    running_app.library.max_seconds = 2.0
    vid = folder_video(running_app)
    status, answer = running_app.client.json(f"/api/analyze?video={vid}", data=b"")
    assert status == 400 and answer["error"] == "tones.mp4 is 4 s long; this app analyses videos of up to 2 s (--max-seconds)"


class BlockedSeparator:
    """Stands in for the Separator: each analysis waits for ``release``; records how many run at once."""
    report = None

    def __init__(self):
        self.running, self.most = 0, 0
        self.lock, self.release = threading.Lock(), threading.Event()

    def analyze(self, path, progress=False):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.release.wait(10)
        time.sleep(0.02)
        with self.lock:
            self.running -= 1
        raise AvsepError(f"{Path(path).name}: fake analysis")


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_analyses_are_queued_one_at_a_time_with_a_bounded_queue():
    separator = BlockedSeparator()
    jobs = AnalysisQueue(separator, max_pending=2, keep=1)
    jobs.start()
    try:
        jobs.submit("v0", Path("v0.mp4"))
        wait_for(lambda: jobs.status("v0")["state"] == "running")
        jobs.submit("v1", Path("v1.mp4"))
        jobs.submit("v2", Path("v2.mp4"))
        assert jobs.status("v2")["stage"] == "waiting: 1 analysis(es) before it"
        with pytest.raises(AvsepError, match="2 analyses are already waiting \\(the limit is 2\\)"):
            jobs.submit("v3", Path("v3.mp4"))
        separator.release.set()
        wait_for(lambda: all(jobs.status(f"v{k}")["state"] == "error" for k in range(3)))
    finally:
        jobs.stop()
    assert separator.most == 1
    assert jobs.status("v0") == {"state": "error", "stage": "analysing sound and pictures", "fraction": 0.0,
                                 "error": "v0.mp4: fake analysis"}


def test_only_the_most_recent_analyses_stay_in_memory(running_app, tmp_path):
    app = running_app
    app.queue.keep = 1
    first = folder_video(app)
    analysed(app, first)
    status, answer = app.client.json("/api/upload?name=second.mp4", data=two_tone_video(tmp_path / "s.mp4", 2.0).read_bytes())
    analysed(app, answer["video"]["id"])
    assert app.client.json(f"/api/status?video={first}")[1] == {"state": "none"}   # the page analyses it again
