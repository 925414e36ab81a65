"""Solo videos and bad files: decode everything with PyAV and check codecs, durations, metadata,
loudness, rests, pools, determinism, resumability and the fallbacks."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import av
import numpy as np
import pytest

from avsep.synth import get_instrument, load_solo_meta, make_bad_files, make_solo_collection, make_solo_video
from avsep.synth.generate import derive_seed
from avsep.synth.loudness import LOUDNESS_RANGE_DB, active_rms_db, window_rms_db
from avsep.synth.soundfonts import POOL_SOUNDFONTS, fluidsynth_available
from avsep.synth.sprites import shape_sprite
from tests.synth.helpers import decode_audio, decode_frames, video_size

SOLO_LABELS = ("violin", "acoustic_guitar", "flute", "drum")
SECONDS = 5.0
RATE = 22050


@pytest.fixture(scope="module")
def solo(tmp_path_factory):
    out = tmp_path_factory.mktemp("solo")
    paths = make_solo_collection(out, SOLO_LABELS, videos_per_label=2, seconds=SECONDS, seed=0, progress=False)
    return out, paths


@pytest.fixture(scope="module")
def held_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("held_out")
    return make_solo_collection(out, ["violin"], videos_per_label=2, seconds=3.0, seed=0, progress=False, pool="test")


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    return make_bad_files(tmp_path_factory.mktemp("bad"), seed=0)


def test_solo_layout_streams_and_duration(solo):
    out, paths = solo
    assert len(paths) == len(SOLO_LABELS) * 2
    for path in paths:
        assert path.parent.parent == out and path.parent.name in SOLO_LABELS and path.suffix == ".mp4"
        with av.open(str(path)) as c:
            v, a = c.streams.video[0], c.streams.audio[0]
            assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
            assert v.codec_context.pix_fmt == "yuv420p"
            assert video_size(path) == (256, 256)
            assert abs(c.duration / 1e6 - SECONDS) < 0.25
            assert json.loads(c.metadata["comment"])["pool"] == "train"
        audio, rate = decode_audio(path)
        assert rate == RATE and abs(len(audio) / rate - SECONDS) < 0.25


def test_solo_metadata(solo):
    for path in solo[1]:
        meta = load_solo_meta(path)
        assert meta["label"] == path.parent.name and meta["pool"] == "train" and meta["video"] == path.name
        if fluidsynth_available():
            assert meta["soundfont"] in {p.rsplit("/", 1)[-1] for p in POOL_SOUNDFONTS["train"]}
        assert len(meta["boxes"]) == round(SECONDS * meta["fps"])
        x0, y0, x1, y1 = meta["box"]
        assert 0 <= x0 < x1 <= 256 and 0 <= y0 < y1 <= 256
        assert all(x0 <= b[0] and y0 <= b[1] and b[2] <= x1 and b[3] <= y1 for b in meta["boxes"])


def test_loudness_in_range_and_most_of_each_clip_sounds(solo):
    for path in solo[1]:
        audio, rate = decode_audio(path)
        level = active_rms_db(audio, rate)
        assert LOUDNESS_RANGE_DB[0] - 1.0 <= level <= LOUDNESS_RANGE_DB[1] + 1.0, (path.name, level)
        assert abs(level - load_solo_meta(path)["loudness_db"]) < 1.0  # AAC keeps the level
        sounding = window_rms_db(audio, rate, 0.25) > level - 30
        assert sounding.mean() > 0.5, path.name


def test_rests_are_silent(solo):
    """Clips with rests in their metadata are silent there (after the last note's release)."""
    rested = [p for p in solo[1] if load_solo_meta(p)["rests"]]
    assert rested, "no clip of the fixture has a rest: pick another seed"
    for path in rested:
        audio, rate = decode_audio(path)
        level = load_solo_meta(path)["loudness_db"]
        for a, b in load_solo_meta(path)["rests"]:
            if b - a >= 1.2:
                quiet = audio[int((a + 0.7) * rate):int(b * rate)]
                assert active_rms_db(quiet, rate) < level - 25 or np.sqrt(np.mean(quiet ** 2)) < 1e-3, path.name


def test_held_out_pool(solo, held_out):
    for path in held_out:
        meta = load_solo_meta(path)
        assert meta["pool"] == "test"
        if fluidsynth_available() and all(os.path.isfile(p) for p in POOL_SOUNDFONTS["test"]):
            assert meta["soundfont"] == "MuseScore_General_Lite.sf3"
    train = decode_audio(next(p for p in solo[1] if p.parent.name == "violin"))[0][: 3 * RATE]
    test = decode_audio(held_out[0])[0][: 3 * RATE]
    assert not np.allclose(train, test, atol=1e-3)


def test_determinism(tmp_path, solo):
    path = solo[1][0]
    seed = derive_seed(0, "train", path.parent.name, 0)
    again = make_solo_video(tmp_path / path.name, path.parent.name, SECONDS, seed=seed)
    np.testing.assert_array_equal(decode_audio(again)[0], decode_audio(path)[0])
    np.testing.assert_array_equal(decode_frames(again, step=30), decode_frames(path, step=30))
    assert load_solo_meta(again) == load_solo_meta(path)
    other = make_solo_video(tmp_path / "other.mp4", path.parent.name, SECONDS, seed=seed + 1)
    assert not np.array_equal(decode_frames(other, step=30), decode_frames(path, step=30))


def test_existing_outputs_are_skipped(solo):
    out, paths = solo
    stamps = {p: p.stat().st_mtime_ns for p in paths}
    assert make_solo_collection(out, SOLO_LABELS, videos_per_label=2, seconds=SECONDS, seed=0, progress=False) == paths
    assert {p: p.stat().st_mtime_ns for p in paths} == stamps
    assert not list(out.rglob("*.part"))


def test_bad_files(bad):
    assert set(bad) == {"corrupt", "no_audio", "silent", "short"}
    assert len({p.parent for p in bad.values()}) == 1
    with pytest.raises(av.FFmpegError):
        with av.open(str(bad["corrupt"])) as c:
            list(c.decode(video=0))
    with av.open(str(bad["no_audio"])) as c:
        assert len(c.streams.audio) == 0 and len(c.streams.video) == 1
    silent, _ = decode_audio(bad["silent"])
    assert len(silent) > 0 and np.abs(silent).max() < 1e-4
    with av.open(str(bad["short"])) as c:
        assert abs(c.duration / 1e6 - 2.0) < 0.25 and len(c.streams.audio) == 1


def test_fallbacks_make_valid_videos(tmp_path, monkeypatch):
    """Without fluidsynth, the emoji font and the photographs: numpy synthesizer, drawn shapes, rooms."""
    import avsep.synth.backgrounds as backgrounds
    import avsep.synth.scenes as scenes

    monkeypatch.setattr(scenes, "instrument_sprite", shape_sprite)
    monkeypatch.setattr(backgrounds, "background_files", lambda pool: ())
    path = make_solo_video(tmp_path / "banjo.mp4", "banjo", 3.0, seed=1, backend="numpy")
    audio, rate = decode_audio(path)
    assert abs(len(audio) / rate - 3.0) < 0.25 and np.sqrt(np.mean(audio ** 2)) > 10 ** (-36 / 20)
    assert load_solo_meta(path)["soundfont"] == "numpy"
    frame = decode_frames(path)[0]
    x0, y0, x1, y1 = load_solo_meta(path)["boxes"][0]
    assert frame[y0:y1, x0:x1].std() > 10  # something drawn in the box


def test_bad_arguments():
    with pytest.raises(ValueError, match="pool"):
        make_solo_video("/nonexistent/x.mp4", "violin", pool="validation")
    with pytest.raises(ValueError, match="even"):
        make_solo_video("/nonexistent/x.mp4", "violin", size=(255, 256))
    with pytest.raises(KeyError, match="unknown instrument"):
        make_solo_video("/nonexistent/x.mp4", "kazoo")
    assert get_instrument("violin").label == "violin"


def test_demo_refuses_old_style_held_out_names(tmp_path):
    from avsep.errors import AvsepError
    from avsep.synth.demo import prepare_demo

    (tmp_path / "heldout_videos" / "violin").mkdir(parents=True)
    (tmp_path / "heldout_videos" / "violin" / "violin_0000.mp4").write_bytes(b"")
    with pytest.raises(AvsepError, match="named as by an older avsep"):
        prepare_demo(tmp_path, per_label=3, heldout_per_label=2, duets=1)
    assert not (tmp_path / "videos").exists()  # refused before generating anything


def test_demo_keeps_training_videos_one_small_clip_long(tmp_path):
    from avsep.data.decode import wav_info
    from avsep.data.index import read_index
    from avsep.synth.demo import prepare_demo

    demo = prepare_demo(tmp_path, labels=["violin", "drum"], per_label=3, heldout_per_label=2, duets=1,
                        seconds=4.0, train_seconds=3.5, workers=1, verbose=False)
    indexes = [demo.data / f"{split}.csv" for split in ("train", "val", "test")]
    rows = [row for index in indexes if index.read_text().strip() for row in read_index(index)]
    assert len(rows) == 6, "3.5 s videos hold one 2.97 s clip of the small preset: none is skipped"
    rate, samples = wav_info(rows[0].audio)
    assert abs(samples / rate - 3.5) < 0.1


def test_demo_puts_a_folder_of_pictures_behind_the_held_out_scenes_only(tmp_path, monkeypatch):
    import avsep.synth
    from PIL import Image

    from avsep.synth.backgrounds import FOLDER_ENV, background_files, package_files
    from avsep.synth.demo import prepare_demo

    monkeypatch.delenv(FOLDER_ENV["test"], raising=False)
    pictures = tmp_path / "rooms"
    pictures.mkdir()
    Image.new("RGB", (320, 240), (90, 60, 30)).save(pictures / "kitchen.jpg")
    seen = {}

    class Generated(Exception):
        pass

    def solo(out, **kwargs):
        seen[Path(out).name] = background_files(kwargs["pool"])

    def duets(out, **kwargs):
        seen["duets"] = background_files(kwargs["pool"])
        raise Generated   # what comes next (preprocessing) is not this test's

    monkeypatch.setattr(avsep.synth, "make_solo_collection", solo)
    monkeypatch.setattr(avsep.synth, "make_duets", duets)
    work = tmp_path / "work"
    with pytest.raises(Generated):
        prepare_demo(work, per_label=3, heldout_per_label=2, duets=1, heldout_backgrounds=pictures)
    assert seen["heldout_videos"] == seen["duets"] == (pictures / "kitchen.jpg",)
    assert seen["videos"] == package_files("train")   # training keeps its own pool
    assert background_files("test") == package_files("test")   # and the held-out pool is restored
    assert (work / "heldout_backgrounds.txt").read_text() == f"{pictures.resolve()}\n"
    with pytest.raises(Generated):   # no folder: the packages, recorded as such
        prepare_demo(tmp_path / "plain", per_label=3, heldout_per_label=2, duets=1)
    assert seen["duets"] == package_files("test")
    assert (tmp_path / "plain" / "heldout_backgrounds.txt").read_text() == "packages\n"


def test_a_demo_workdir_keeps_the_backgrounds_of_its_held_out_scenes(tmp_path, monkeypatch):
    from PIL import Image

    from avsep.errors import AvsepError
    from avsep.synth.backgrounds import FOLDER_ENV
    from avsep.synth.demo import check_heldout_backgrounds as check
    from avsep.synth.demo import heldout_backgrounds_choice

    monkeypatch.delenv(FOLDER_ENV["test"], raising=False)
    pictures, other = tmp_path / "rooms", tmp_path / "stages"
    for folder in (pictures, other):
        folder.mkdir()
        Image.new("RGB", (32, 32)).save(folder / "a.png")
    work = tmp_path / "work"
    work.mkdir()
    (work / "heldout_backgrounds.txt").write_text(f"{heldout_backgrounds_choice(pictures)}\n")
    check(work, None)   # recorded but nothing made (an interrupted first run): any choice goes
    (work / "duets").mkdir()
    monkeypatch.chdir(tmp_path)
    check(work, "rooms/")   # the same folder, spelled otherwise
    made_with = re.escape(str(pictures.resolve()))
    with pytest.raises(AvsepError, match=f"made with {made_with}, not the held-out wallpaper packages: use a new"):
        check(work, None)
    with pytest.raises(AvsepError, match=f"made with {made_with}, not {re.escape(str(other.resolve()))}: use"):
        check(work, other)
    monkeypatch.setenv(FOLDER_ENV["test"], str(pictures))   # the environment's folder is the default
    check(work, None)
    monkeypatch.delenv(FOLDER_ENV["test"])
    (work / "duets").rmdir()   # deleted, as the error says, to be made again
    check(work, other)
    # A workdir made before the record existed used the packages; a folder without pictures is refused.
    old = tmp_path / "old"
    (old / "heldout_videos").mkdir(parents=True)
    with pytest.raises(AvsepError, match="made with the held-out wallpaper packages \\(as far as avsep knows: if "
                                         "they were made with AVSEP_TEST_BACKGROUNDS, write that folder's path"):
        check(old, pictures)
    with pytest.raises(AvsepError, match=f"^{re.escape(str(old))}: no pictures"):
        check(tmp_path / "new", old)
    monkeypatch.setenv(FOLDER_ENV["test"], str(old))   # the environment's folder is checked as a given one
    with pytest.raises(AvsepError, match=f"^{re.escape(str(old.resolve()))}: no pictures"):
        check(tmp_path / "new", None)


def _fail_on_second(index: int) -> int:
    if index == 1:
        raise ValueError("a broken job")
    return index


def test_a_job_that_fails_closes_the_progress_bar():
    from tqdm import tqdm

    from avsep.synth.jobs import run_jobs

    with pytest.raises(ValueError, match="a broken job") as error:
        run_jobs(_fail_on_second, [{"index": i} for i in range(3)], workers=1, desc="jobs")
    # While the error is handled its traceback keeps the bar alive: it must be closed already.
    assert error.tb is not None and not list(tqdm._instances)
