"""avsep download: index parsing, sharding, failure handling, resume and the CLI, all offline.

Downloads go to a local HTTP server (tests/download/fake_youtube.py) that serves generated videos and
injects 404, 429 + Retry-After, 500, cut connections and non-video bodies.
"""
from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import pytest

from avsep.download import Options, download, load_index, safe_label, select, shard
from avsep.download.failures import PERMANENT, THROTTLED, TRANSIENT, MediaError, classify, parse_retry_after
from avsep.download.fetch import ytdlp_params
from avsep.download.indexes import limit, parse_shard
from avsep.download.runner import prepare, read_state
from avsep.download.throttle import Backoff, Throttle
from avsep.errors import AvsepError

try:  # tests/ may or may not be a package
    from tests.download.fake_youtube import FakeYouTube, Route, make_video
except ImportError:
    from .fake_youtube import FakeYouTube, Route, make_video

REPO = Path(__file__).resolve().parents[2]
DATASETS = Path(__file__).resolve().parents[3] / "shared" / "datasets"
ENV = {**os.environ, "PYTHONPATH": str(REPO)}
FAST = dict(backoff=0.05, max_wait=5.0, slowdown_pause=0.2, progress=False, workers=3)

# CI sets AVSEP_REQUIRE_DATASETS=1: there the index files must be found, so these tests fail
# rather than skip when they are not.
needs_datasets = pytest.mark.skipif(not DATASETS.is_dir() and not os.environ.get("AVSEP_REQUIRE_DATASETS"),
                                    reason=f"shared dataset index files not found at {DATASETS}")
REAL_INDEXES = [("music", "MUSIC/MUSIC_solo_videos.json", 536), ("music", "MUSIC/MUSIC21_solo_videos.json", 1164),
                ("music", "MUSIC/MUSIC_duet_videos.json", 149), ("vggsound", "VGGSound/vggsound_test_split.csv", 15446)]


def avsep(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "avsep", *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


def decodes(path: Path) -> bool:
    """A video frame and some audio decode."""
    try:
        with av.open(str(path)) as c:
            next(c.decode(video=0))
        with av.open(str(path)) as c:
            next(c.decode(audio=0))
        return True
    except Exception:
        return False


def videos_in(out: Path) -> list[Path]:
    """Every file that `avsep preprocess` would read: OUT/<label>/<file>, hidden ones excluded."""
    return sorted(p for p in out.glob("*/*") if not p.parent.name.startswith(".") and not p.name.startswith("."))


def partial_download(out: Path) -> bool:
    """Whether a running download has written part of a video in OUT/.tmp. The downloader removes
    its work folders as videos finish, so one can vanish while we look: that is a "not yet"."""
    try:
        return any(p.is_file() and p.stat().st_size > 0 for p in (out / ".tmp").rglob("media*"))
    except FileNotFoundError:
        return False


def everything_but_work_in_progress(out: Path) -> list[Path]:
    """All files in OUT except the hidden .tmp folder and the ledgers."""
    return [p for p in out.rglob("*") if p.is_file() and ".tmp" not in p.relative_to(out).parts
            and not p.name.startswith("download")]


def ledger(out: Path) -> dict[str, dict]:
    return {r["id"]: r for r in read_state(out).values()}


def music_index(path: Path, videos: dict[str, list[str]]) -> Path:
    path.write_text(json.dumps({"version": 1.0, "videos": videos}))
    return path


# --- fixtures: generated videos and the server ----------------------------------------------------

@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, bytes]:
    root = tmp_path_factory.mktemp("media")
    return {
        "small": make_video(root / "small.mp4").read_bytes(),                  # 12 s, 320x240, H.264 + AAC
        "long": make_video(root / "long.mp4", seconds=20).read_bytes(),        # for VGGSound clips
        "big": make_video(root / "big.mp4", width=640, height=480).read_bytes(),
        "webm": make_video(root / "v.webm", container="webm", vcodec="libvpx-vp9", acodec="libopus",
                           sample_rate=48000).read_bytes(),
    }


@pytest.fixture
def server():
    with FakeYouTube(lifetime=120) as fake:
        yield fake


# --- index files ----------------------------------------------------------------------------------

@needs_datasets
@pytest.mark.parametrize("dataset,name,count", REAL_INDEXES)
def test_real_index_files_parse_exactly(dataset, name, count):
    items = load_index(dataset, DATASETS / name)
    assert len(items) == count
    assert len({i.relpath for i in items}) == count
    assert all(i.url.startswith("https://www.youtube.com/watch?v=") for i in items)
    assert any(i.name.startswith("-") for i in items)  # ids that look like options survive
    if "duet" in name:
        assert all(" " in i.label and i.folder == i.label for i in items)


@needs_datasets
def test_vggsound_names_match_the_official_clip_names():
    items = load_index("vggsound", DATASETS / "VGGSound/vggsound_test_split.csv")
    official = {row[0]: row[1] for row in csv.reader(open(DATASETS / "VGGSound/test.csv", newline=""))}
    assert {f"{i.name}.mp4": i.label for i in items} == official
    assert all(i.duration == 10 and i.split == "test" for i in items)
    fiddle = [i for i in items if i.label == "playing violin, fiddle"]
    assert fiddle and fiddle[0].folder == "playing violin - fiddle"
    by_label, by_folder = select(items, ["playing violin, fiddle"]), select(items, ["playing violin - fiddle"])
    assert len(by_label) == len(fiddle) == len(by_folder)


def test_safe_label():
    assert safe_label("playing violin, fiddle") == "playing violin - fiddle"
    assert safe_label("flute violin") == "flute violin"
    assert safe_label("AC/DC: live?") == "AC-DC- live-"
    assert safe_label("..hidden") == "hidden"
    assert safe_label(" / ") == "-"
    assert safe_label("") == "unlabelled"


def test_urls_index(tmp_path):
    index = tmp_path / "mine.csv"
    index.write_text("url,label,start_seconds,duration_seconds\n"
                     "https://www.youtube.com/watch?v=-abcdefghij,violin\n"
                     "https://youtu.be/xyz12345678,cello,30,8\n"
                     "http://a.example/x/clip.mp4,\"drum, snare\",5\n"
                     "http://b.example/y/clip.mp4,drum\n"
                     "# a comment\n\n")
    items = load_index("urls", index)
    assert [i.name for i in items[:2]] == ["-abcdefghij", "xyz12345678_000030"]
    assert re.fullmatch(r"clip-[0-9a-f]{8}_000005", items[2].name)  # same file name, different URLs
    assert items[1].start == 30 and items[1].duration == 8 and items[2].duration is None
    assert items[2].folder == "drum - snare" and items[3].name.startswith("clip-") and items[3].name != items[2].name


@pytest.mark.parametrize("dataset,text,message", [
    ("music", "{not json", "not a MUSIC JSON file"),
    ("music", '{"videos": {"violin": "abc"}}', "list of YouTube ids"),
    ("music", '{"videos": {}}', "lists no videos"),
    ("vggsound", "abcdefghijk,30,dog\n", ":1: expected 4 columns"),
    ("vggsound", "abcdefghijk,soon,dog,test\n", ":1: 'soon' is not a number"),
    ("urls", "not-a-url,violin\n", "is not a full URL"),
])
def test_bad_index_files(tmp_path, dataset, text, message):
    index = tmp_path / "index"
    index.write_text(text)
    with pytest.raises(AvsepError, match=message):
        load_index(dataset, index)


# --- selection and sharding -----------------------------------------------------------------------

@needs_datasets
@pytest.mark.parametrize("name", ["MUSIC/MUSIC21_solo_videos.json", "VGGSound/vggsound_test_split.csv"])
@pytest.mark.parametrize("count", [3, 4])
def test_shards_partition_the_list(name, count):
    items = load_index("vggsound" if name.endswith(".csv") else "music", DATASETS / name)
    shards = [shard(items, i, count) for i in range(1, count + 1)]
    keys = [i.key for s in shards for i in s]
    assert len(keys) == len(set(keys)) == len(items)  # disjoint, and their union is everything
    assert min(map(len, shards)) > 0.8 * len(items) / count
    shuffled = random.Random(0).sample(items, len(items))  # the same id goes to the same shard anyway
    assert {i.key for i in shard(shuffled, 2, count)} == {i.key for i in shards[1]}


@pytest.mark.parametrize("text", ["0/4", "5/4", "1/0", "x", "1-4", ""])
def test_bad_shard(text):
    with pytest.raises(AvsepError, match="--shard"):
        parse_shard(text)


def test_limit_is_round_robin_over_labels(tmp_path):
    videos = {"a": ["a1", "a2", "a3"], "b": ["b1"], "c": ["c1", "c2"]}
    items = load_index("music", music_index(tmp_path / "m.json", videos))
    assert [i.name for i in limit(items, 4)] == ["a1", "b1", "c1", "a2"]
    assert len(limit(items, 100)) == 6


# --- failure classification, backoff and the global slow-down --------------------------------------

def _http_error(status: int, headers: dict):
    from yt_dlp.networking import Response
    from yt_dlp.networking.exceptions import HTTPError
    from yt_dlp.utils import DownloadError, ExtractorError

    err = HTTPError(Response(io.BytesIO(b""), "http://x", headers, status=status))
    wrapped = ExtractorError(f"Unable to download webpage: HTTP Error {status}", cause=err)
    return DownloadError(f"ERROR: {wrapped}", (type(err), err, None))


@pytest.mark.parametrize("message,kind,reason", [
    ("ERROR: [youtube] x: Sign in to confirm you\u2019re not a bot. Use --cookies", THROTTLED, "bot check"),
    ("ERROR: [youtube] x: Sign in to confirm your age", PERMANENT, "age check"),
    ("ERROR: [youtube] x: Private video. Sign in if you've been granted access", PERMANENT, "private video"),
    ("ERROR: [youtube] x: Video unavailable. This video has been removed by the uploader", PERMANENT, "removed"),
    ("ERROR: [youtube] x: Video unavailable", PERMANENT, "unavailable"),
    ("ERROR: [download] Got error: Downloaded 10 bytes, expected 20 bytes", TRANSIENT, "truncated download"),
    ("ERROR: Read timed out.", TRANSIENT, "timeout"),
    ("ERROR: [Errno 104] Connection reset by peer", TRANSIENT, "connection error"),
])
def test_classify_messages(message, kind, reason):
    from yt_dlp.utils import DownloadError

    failure = classify(DownloadError(message))
    assert (failure.kind, failure.reason) == (kind, reason)


def test_classify_http_errors():
    failure = classify(_http_error(429, {"Retry-After": "7"}))
    assert (failure.kind, failure.reason, failure.retry_after) == (THROTTLED, "HTTP 429", 7.0)
    assert classify(_http_error(404, {})).kind == PERMANENT
    assert classify(_http_error(503, {})).kind == TRANSIENT
    assert classify(TimeoutError()).kind == TRANSIENT
    assert classify(MediaError("not a video: junk")).kind == PERMANENT
    assert classify(MediaError("truncated: 2 s of 10 s", transient=True)).kind == TRANSIENT
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:05 GMT", now=1445412480.0) == pytest.approx(5.0)
    assert parse_retry_after("soon") is None


def test_backoff_is_bounded_jittered_and_honours_retry_after():
    backoff = Backoff(base=1.0, max_wait=10.0)
    assert [backoff.delay(a, rng=lambda: 1.0) for a in range(5)] == [1, 2, 4, 8, 10]
    assert [backoff.delay(a, rng=lambda: 0.0) for a in range(3)] == [0.5, 1, 2]
    assert 7.0 <= backoff.delay(0, retry_after=7.0) <= 7.5
    assert backoff.delay(0, retry_after=3600) == 10.0


def test_throttle_pauses_every_worker_after_throttled_failures_in_a_row():
    throttle = Throttle(threshold=3, pause=0.4, max_wait=5)
    assert throttle.wait_turn()
    throttle.throttled("HTTP 429")
    throttle.throttled("HTTP 429")
    throttle.success()  # a success in between resets the count
    throttle.throttled("HTTP 429")
    throttle.throttled("HTTP 429")
    start = time.monotonic()
    assert throttle.wait_turn() and time.monotonic() - start < 0.2
    throttle.throttled("bot check")
    # Every thread now waits for the pause, and requests are spaced by the global interval.
    starts = []
    threads = [threading.Thread(target=lambda: (throttle.wait_turn(), starts.append(time.monotonic())))
               for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert min(starts) - start >= 0.35
    assert max(starts) - min(starts) >= 2 * throttle.interval * 0.9 > 0
    assert throttle.trips == 1
    for _ in range(10):
        throttle.success()
    assert throttle.interval == 0


def test_ytdlp_params_cut_clips_on_download():
    from avsep.download.indexes import Item
    from yt_dlp.utils import download_range_func

    clip = Item(name="-abc_000030", label="dog", url="https://www.youtube.com/watch?v=-abc", start=30, duration=10)
    params = ytdlp_params(clip, Path("/tmp/x"), Options(max_height=240, rate_limit=1000, cookies=Path("c.txt")))
    assert params["download_ranges"] == download_range_func(None, [(30, 40)])
    assert params["force_keyframes_at_cuts"] and params["format_sort"][0] == "res:240"
    assert params["ratelimit"] == 1000 and params["retries"] == 0
    assert params["cookiefile"] == "/tmp/x/cookies.txt"  # a private copy: yt-dlp rewrites it on closing
    whole = ytdlp_params(Item(name="abc", label="dog", url="u"), Path("/tmp/x"), Options())
    assert "download_ranges" not in whole and whole["merge_output_format"] == "mp4"


# --- downloads from the local server --------------------------------------------------------------

def test_download_retries_records_and_resumes(tmp_path, server, media):
    server.add("-leading-dash.mp4", Route(media["small"]))
    server.add("slow429.mp4", Route(media["small"], fail=[(429, {"Retry-After": "1"})] * 2))
    server.add("flaky500.mp4", Route(media["small"], fail=[(500, {})]))
    server.add("cut.mp4", Route(media["small"], cut=2))
    server.add("tall.mp4", Route(media["big"]))
    server.add("vp9.mp4", Route(media["webm"], content_type="video/webm"))
    server.add("page.mp4", Route(b"<html><body>Sign in</body></html>" * 50, content_type="video/mp4"))
    index = music_index(tmp_path / "music.json", {
        "violin": ["-leading-dash", "slow429", "flaky500", "gone"],
        "flute violin": ["cut", "tall", "vp9", "page"]})
    out = tmp_path / "out"
    items = load_index("music", index, server.template)

    summary = download(items, out, Options(**FAST))
    records = ledger(out)
    assert {k: r["status"] for k, r in records.items()} == {
        "-leading-dash": "done", "slow429": "done", "flaky500": "done", "cut": "done", "tall": "done",
        "vp9": "done", "gone": "failed", "page": "failed"}
    assert records["gone"]["reason"] == "HTTP 404" and records["page"]["reason"] == "not a video"
    assert records["flaky500"]["attempts"] == 2 and records["cut"]["attempts"] >= 2
    assert records["slow429"]["attempts"] == 3
    hits = [h for h in server.hits_for("slow429.mp4")]
    assert [h.status for h in hits[:2]] == [429, 429]
    assert hits[1].time - hits[0].time >= 0.95 and hits[2].time - hits[1].time >= 0.95  # Retry-After honoured
    assert all(set(r) >= {"id", "label", "status", "reason", "bytes", "seconds"} for r in records.values())
    assert summary.overall["done"] == 6 and summary.overall["failed"] == 2 and summary.incomplete == 0
    assert "HTTP 404" in summary.table() and "not a video" in summary.table()

    files = videos_in(out)
    assert [p.relative_to(out).as_posix() for p in files] == [
        "flute violin/cut.mp4", "flute violin/tall.mp4", "flute violin/vp9.mp4",
        "violin/-leading-dash.mp4", "violin/flaky500.mp4", "violin/slow429.mp4"]
    assert all(decodes(p) for p in files)
    with av.open(str(out / "flute violin/vp9.mp4")) as c:  # converted so that it plays anywhere
        assert (c.streams.video[0].codec_context.name, c.streams.audio[0].codec_context.name) == ("h264", "aac")
    with av.open(str(out / "flute violin/tall.mp4")) as c:  # 480 lines scaled to --max-height
        assert c.streams.video[0].codec_context.height == 360
    assert not [p for p in (out / ".tmp").rglob("*") if p.is_file() and not p.name.endswith(".lock")]

    # A rerun fetches nothing: done and permanently failed items are skipped.
    seen = len(server.hits)
    again = download(items, out, Options(**FAST))
    assert len(server.hits) == seen and again.skipped == 8 and not again.this_run
    # --retry-failed tries the permanent failures again, and only them.
    retried = download(items, out, Options(**FAST, retry_failed=True))
    assert {h.path for h in server.hits[seen:]} == {"gone.mp4", "page.mp4"}
    assert retried.this_run["failed"] == 2


def test_max_height_and_transient_failures_left_for_the_next_run(tmp_path, server, media):
    server.add("tall.mp4", Route(media["big"]))
    server.add("busy.mp4", Route(media["small"], fail=[(503, {})] * 3))
    items = load_index("music", music_index(tmp_path / "m.json", {"cello": ["tall", "busy"]}), server.template)
    summary = download(items, tmp_path / "out", Options(**FAST, max_height=200, retries=1))
    with av.open(str(tmp_path / "out/cello/tall.mp4")) as c:
        assert c.streams.video[0].codec_context.height <= 200
    assert ledger(tmp_path / "out")["busy"]["status"] == "transient" and summary.incomplete == 1
    summary = download(items, tmp_path / "out", Options(**FAST, retries=1))  # tried again, now it works
    assert ledger(tmp_path / "out")["busy"]["status"] == "done" and summary.incomplete == 0


def test_vggsound_clips_are_cut_to_ten_seconds_from_start(tmp_path, server, media):
    server.add("-vggclip.mp4", Route(media["long"]))
    index = tmp_path / "vgg.csv"
    index.write_text('-vggclip,5,"playing violin, fiddle",test\n-vggclip,8,dog barking,train\n')
    items = select(load_index("vggsound", index, server.template), split="test")
    assert len(items) == 1
    download(items, tmp_path / "out", Options(**FAST))
    clip = tmp_path / "out/playing violin - fiddle/-vggclip_000005.mp4"
    assert decodes(clip) and videos_in(tmp_path / "out") == [clip]
    with av.open(str(clip)) as c:
        assert c.duration / 1e6 == pytest.approx(10.0, abs=0.3)
        red = next(c.decode(video=0)).to_ndarray(format="rgb24")[:, :16, 0].mean()
    # make_video shifts its red ramp by 8 levels per frame (10 fps): frame 50 starts at 400 % 256.
    assert red == pytest.approx(144 + 7.5, abs=12)


def test_files_without_ledger_lines_are_adopted_or_replaced(tmp_path, server, media):
    server.add("good.mp4", Route(media["small"]))
    server.add("broken.mp4", Route(media["small"]))
    items = load_index("music", music_index(tmp_path / "m.json", {"erhu": ["good", "broken"]}), server.template)
    (tmp_path / "out/erhu").mkdir(parents=True)
    (tmp_path / "out/erhu/good.mp4").write_bytes(media["small"])     # renamed, then killed before the record
    (tmp_path / "out/erhu/broken.mp4").write_bytes(media["small"][:5000])
    download(items, tmp_path / "out", Options(**FAST))
    records = ledger(tmp_path / "out")
    assert records["good"]["reason"] == "found on disk" and not server.hits_for("good.mp4")
    assert records["broken"]["status"] == "done" and server.hits_for("broken.mp4")
    assert all(decodes(p) for p in videos_in(tmp_path / "out"))


def test_many_429s_in_a_row_slow_every_worker_down(tmp_path, server, media, caplog):
    names = [f"busy{i}" for i in range(4)]
    for name in names:
        server.add(f"{name}.mp4", Route(media["small"], fail=[(429, {})]))
    items = load_index("music", music_index(tmp_path / "m.json", {"drum": names}), server.template)
    options = Options(**{**FAST, "workers": 4, "slowdown_after": 3, "slowdown_pause": 1.0})
    with caplog.at_level("WARNING", logger="avsep"):
        summary = download(items, tmp_path / "out", options)
    assert summary.overall["done"] == 4
    assert "pausing all workers for 1 s" in caplog.text
    # Without the pause, retries come back after 0.05-0.1 s; with it the server gets a quiet second.
    times = sorted(h.time for h in server.hits)
    assert max(b - a for a, b in zip(times, times[1:])) >= 0.8


def test_cookies_are_sent_and_the_file_is_left_alone(tmp_path, server, media):
    names = ["ck1", "ck2", "ck3"]
    for name in names:
        server.add(f"{name}.mp4", Route(media["small"]))
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tsession\tsecret42\n")
    before = cookies.read_bytes()
    items = load_index("music", music_index(tmp_path / "m.json", {"harp": names}), server.template)
    download(items, tmp_path / "out", Options(**FAST, cookies=cookies))
    assert {r["status"] for r in ledger(tmp_path / "out").values()} == {"done"}
    assert all(h.cookie and "session=secret42" in h.cookie for h in server.hits)
    assert cookies.read_bytes() == before  # yt-dlp rewrote a private copy, never the user's file
    assert not list((tmp_path / "out").rglob("cookies*"))


def test_one_run_per_out_and_shard(tmp_path):
    _, lock = prepare(tmp_path, Options())
    with lock:
        with pytest.raises(AvsepError, match="already writing"):
            prepare(tmp_path, Options())
        prepare(tmp_path, Options(shard=(2, 3)))[1].close()  # another shard may share OUT
    prepare(tmp_path, Options())[1].close()


@pytest.mark.slow
def test_kill_9_mid_download_then_rerun_completes(tmp_path, server, media):
    names = ["-kill1", "kill2", "kill3", "kill4"]
    routes = [server.add(f"{n}.mp4", Route(media["small"], rate=150_000)) for n in names]  # ~1.4 s per video
    index = music_index(tmp_path / "m.json", {"tuba": names[:2], "banjo": names[2:]})
    out = tmp_path / "out"
    command = [sys.executable, "-m", "avsep", "download", "music", str(index), str(out), "--url-template",
               server.template, "--workers", "2", "--backoff", "0.05", "--no-progress"]

    for wait_for in ("a partial download", "a finished video"):
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            partial = partial_download(out)
            if (partial and wait_for == "a partial download") or (videos_in(out) and wait_for == "a finished video"):
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before {wait_for}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        # Whatever the moment, OUT holds only complete videos; partial work is hidden in .tmp.
        assert all(decodes(p) and p.suffix == ".mp4" for p in everything_but_work_in_progress(out))

    for route in routes:
        route.rate = None
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr
    assert {r["status"] for r in ledger(out).values()} == {"done"} and len(ledger(out)) == 4
    assert len(everything_but_work_in_progress(out)) == 4
    assert all(decodes(p) for p in everything_but_work_in_progress(out))
    assert not [p for p in (out / ".tmp").rglob("*") if p.is_file() and not p.name.endswith(".lock")]


# --- the command line -----------------------------------------------------------------------------

@needs_datasets
def test_dry_run_lists_without_network(tmp_path):
    out = tmp_path / "never"
    result = avsep("download", "vggsound", str(DATASETS / "VGGSound/vggsound_test_split.csv"), str(out),
                   "--dry-run", "--classes", "playing violin, fiddle", "dog barking", "--limit", "6", "--shard", "1/2",
                   "--url-template", "http://127.0.0.1:9/{id}.mp4")
    assert result.returncode == 0, result.stderr
    assert "6 videos selected" in result.stdout and "playing violin, fiddle -> playing violin - fiddle" in result.stdout
    assert result.stdout.count("http://127.0.0.1:9/") == 6 and "-> dog barking/" in result.stdout
    assert not out.exists()


@needs_datasets
def test_dry_run_counts_per_label():
    result = avsep("download", "music", str(DATASETS / "MUSIC/MUSIC_solo_videos.json"), "/nonexistent/out", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "536 videos selected" in result.stdout and "536 would be fetched" in result.stdout
    counts = {line.split()[1]: int(line.split()[0]) for line in result.stdout.splitlines()
              if re.fullmatch(r"\s+\d+  \w+", line)}
    assert len(counts) == 11 and sum(counts.values()) == 536
    assert result.stdout.count("https://www.youtube.com/watch?v=") == 10


@pytest.mark.parametrize("args,message", [
    (["music", "{missing}", "{out}"], "does not exist"),
    (["vggsound", "{bad}", "{out}"], "expected 4 columns"),
    (["music", "{good}", "{out}", "--shard", "3/2"], "--shard"),
    (["music", "{good}", "{out}", "--shard", "two/4"], "--shard"),
])
def test_cli_errors_are_one_line(tmp_path, args, message):
    paths = {"missing": tmp_path / "missing.json", "bad": tmp_path / "bad.csv", "good": tmp_path / "good.json",
             "out": tmp_path / "out"}
    paths["bad"].write_text("abc,1,2\n")
    music_index(paths["good"], {"violin": ["abc"]})
    result = avsep("download", *[a.format(**paths) for a in args])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("avsep: error:") and message in lines[0]
    assert not paths["out"].exists()


@pytest.mark.parametrize("args,message", [
    (["--split", "test"], "--split only applies"),
    (["--cookies", "nowhere.txt"], "--cookies"),
    (["--rate-limit", "fast"], "--rate-limit"),
    (["--workers", "0"], "--workers"),
    (["--url-template", "http://mirror/video"], "{id}"),
    (["--classes", "viola"], "did you mean 'violin'"),
    (["--limit", "0"], "--limit"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, args, message):
    from avsep.cli import main

    index = music_index(tmp_path / "good.json", {"violin": ["abc"]})
    assert main(["download", "music", str(index), str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("avsep: error:") and message in err and "\n" not in err
