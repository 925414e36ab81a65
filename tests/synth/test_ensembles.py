"""Ensembles of 2-4 players: manifest, stems that sum to the mixture, per-frame boxes, pools."""
from __future__ import annotations

import json
import os

import av
import numpy as np
import pytest
from scipy.io import wavfile

from avsep.synth import load_duets, make_duets
from avsep.synth.ensembles import default_groups
from avsep.synth.soundfonts import POOL_SOUNDFONTS, fluidsynth_available
from tests.synth.helpers import decode_audio, decode_frames, video_size

PAIRS = [("violin", "drum"), ("flute", "acoustic_guitar")]


@pytest.fixture(scope="module")
def duets(tmp_path_factory):
    out = tmp_path_factory.mktemp("duets")
    return out, make_duets(out, pairs=PAIRS, seconds=4.0, seed=100)


@pytest.fixture(scope="module")
def quartet(tmp_path_factory):
    out = tmp_path_factory.mktemp("quartet")
    return out, make_duets(out, count=1, players=4, seconds=3.0, seed=5, size=(512, 288), pool="test")


def test_manifest_and_files(duets, quartet):
    out, entries = duets
    assert json.loads((out / "duets.json").read_text())["duets"] == entries
    assert [e["name"] for e in entries] == ["duet_000", "duet_001"]
    for entry in entries:
        assert json.loads((out / f"{entry['name']}.json").read_text()) == entry
        assert entry["pool"] == "train" and entry["players"] == 2 and (entry["width"], entry["height"]) == (512, 256)
        assert tuple(s["label"] for s in entry["sources"]) in PAIRS
        with av.open(str(out / entry["video"])) as c:
            assert c.streams.video[0].codec_context.name == "h264" and c.streams.audio[0].codec_context.name == "aac"
        assert video_size(out / entry["video"]) == (entry["width"], entry["height"])
    qout, (q,) = quartet
    assert q["name"] == "quartet_000" and q["players"] == 4 and q["pool"] == "test" and len(q["sources"]) == 4
    assert video_size(qout / q["video"]) == (512, 288)
    if fluidsynth_available() and all(os.path.isfile(p) for p in POOL_SOUNDFONTS["test"]):
        assert q["soundfont"] == "MuseScore_General_Lite.sf3"


def test_stems_sum_to_the_mixture(duets, quartet):
    for out, entries in (duets, quartet):
        for entry in entries:
            rate, mixture = wavfile.read(out / entry["mixture"])
            stems = [wavfile.read(out / s["stem"])[1].astype(np.int32) for s in entry["sources"]]
            np.testing.assert_array_equal(mixture.astype(np.int32), np.sum(stems, axis=0))  # exactly
            assert all(np.sqrt(np.mean((s / 32768.0) ** 2)) > 10 ** (-50 / 20) for s in stems)
            decoded, decoded_rate = decode_audio(out / entry["video"])
            assert decoded_rate == rate == entry["audio_rate"]
            n = min(len(decoded), len(mixture))
            ref = mixture[:n] / 32767.0
            err = decoded[:n] - ref
            assert 10 * np.log10(np.sum(ref ** 2) / np.sum(err ** 2)) > 15  # the mp4 holds the mixture (AAC)


def test_per_frame_boxes(duets, quartet):
    for out, entries in (duets, quartet):
        for entry in entries:
            w, h, frames = entry["width"], entry["height"], round(entry["seconds"] * entry["fps"])
            video = decode_frames(out / entry["video"])
            assert len(video) == frames
            for src in entry["sources"]:
                assert len(src["boxes"]) == frames
                x0, y0, x1, y1 = src["box"]
                assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
                for i in (0, frames - 1):
                    bx0, by0, bx1, by1 = src["boxes"][i]
                    assert x0 <= bx0 < bx1 <= x1 and y0 <= by0 < by1 <= y1
                    assert video[i, by0:by1, bx0:bx1].astype(np.float32).std() > 8  # something drawn there


def test_load_duets_absolute_paths(duets):
    out, _ = duets
    for entry in load_duets(out):
        assert os.path.isabs(entry["video"]) and os.path.exists(entry["video"]) and os.path.exists(entry["mixture"])
        assert all(os.path.isabs(s["stem"]) and os.path.exists(s["stem"]) for s in entry["sources"])


def test_existing_scenes_are_skipped(duets):
    out, entries = duets
    video = out / entries[0]["video"]
    stamp = video.stat().st_mtime_ns
    assert make_duets(out, pairs=PAIRS, seconds=4.0, seed=100) == entries
    assert video.stat().st_mtime_ns == stamp
    assert not list(out.rglob("*.part"))


def test_groups_and_bad_input(tmp_path):
    groups = default_groups(12, 3, np.random.default_rng(0))
    assert all(len(set(g)) == 3 for g in groups) and len(set(groups)) == 10  # all 10 trios of 5 labels
    with pytest.raises(ValueError, match="2 to 4 different labels"):
        make_duets(tmp_path, pairs=[("violin", "violin")])
    with pytest.raises(ValueError, match="players"):
        make_duets(tmp_path, count=1, players=5)
    with pytest.raises(ValueError, match="players"):
        make_duets(tmp_path, count=1, players=3, labels=["violin", "drum"])
    groups = default_groups(3, 2, np.random.default_rng(0), ["violin", "drum", "piano"])
    assert sorted(groups) == sorted([("violin", "drum"), ("violin", "piano"), ("drum", "piano")])
    with pytest.raises(KeyError, match="unknown instrument"):
        make_duets(tmp_path, pairs=[("violin", "kazoo")])
