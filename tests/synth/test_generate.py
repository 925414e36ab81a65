"""Tests for the synthetic data generator (data_tools): decode everything with PyAV and check
codecs, durations, loudness, distinct timbres and pictures, duet ground truth, bad files,
determinism and resumability."""
from __future__ import annotations

import itertools
import json
import os
import struct

import av
import numpy as np
import pytest
from scipy.signal import stft

from avsep.synth import CATALOG, DEFAULT_LABELS, get_instrument, load_duets, make_bad_files, make_duets
from avsep.synth import make_solo_collection, make_solo_video
from avsep.cli import main
from avsep.synth.midi import MAX_REST_S, midi_bytes, random_melody
from avsep.synth.render import fluidsynth_available, read_wav, render_clip
from avsep.synth.videos import emoji_font, emoji_sprite, instrument_sprite, shape_sprite

SOLO_LABELS = ("violin", "acoustic_guitar", "flute", "drum")
RATE = 22050


def decode_audio(path) -> tuple[np.ndarray, int]:
    """Mono float32 ``[n]`` and its rate."""
    with av.open(str(path)) as c:
        frames = [f.to_ndarray() for f in c.decode(audio=0)]
        rate = c.streams.audio[0].rate
    return np.concatenate([f.mean(axis=0) for f in frames]).astype(np.float32), rate


def decode_frames(path, step: int = 1) -> np.ndarray:
    """Every ``step``-th frame, ``[T, H, W, 3]`` uint8."""
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % step == 0])


def band_spectrum(audio: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Mean log power in 32 log-spaced bands (60 Hz - 10 kHz), level-normalised; ``[32]``."""
    f, _, z = stft(audio, rate, nperseg=1024)
    power = np.abs(z) ** 2
    edges = np.geomspace(60, 10000, 33)
    bands = np.array([power[(f >= lo) & (f < hi)].sum(0).mean() for lo, hi in zip(edges[:-1], edges[1:])])
    logp = np.log(bands + 1e-10)
    return logp - logp.mean()


@pytest.fixture(scope="module")
def solo(tmp_path_factory):
    out = tmp_path_factory.mktemp("solo")
    paths = make_solo_collection(out, SOLO_LABELS, videos_per_label=2, seconds=8.0, seed=0, progress=False)
    return out, paths


@pytest.fixture(scope="module")
def duets(tmp_path_factory):
    out = tmp_path_factory.mktemp("duets")
    entries = make_duets(out, pairs=[("violin", "drum"), ("flute", "acoustic_guitar")], seconds=6.0, seed=100)
    return out, entries


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    return make_bad_files(tmp_path_factory.mktemp("bad"), seed=0)


def test_catalog_emoji_render():
    if emoji_font() is None:
        pytest.skip("Noto Color Emoji not installed")
    for inst in CATALOG.values():
        sprite = emoji_sprite(inst.emoji)
        assert sprite is not None and sprite.getchannel("A").getbbox() is not None, inst.label
    assert emoji_sprite("\U000F0000") is None  # private-use code point: no glyph


def test_sprites_differ_between_labels():
    def small(img):
        return np.asarray(img.convert("RGBA").resize((48, 48)), dtype=np.float32)

    for sprites in ([instrument_sprite(i) for i in CATALOG.values()], [shape_sprite(i) for i in CATALOG.values()]):
        for a, b in itertools.combinations(range(len(sprites)), 2):
            assert np.abs(small(sprites[a]) - small(sprites[b])).mean() > 5.0


def test_solo_layout_streams_and_duration(solo):
    out, paths = solo
    assert len(paths) == len(SOLO_LABELS) * 2
    for path in paths:
        assert path.parent.parent == out and path.parent.name in SOLO_LABELS and path.suffix == ".mp4"
        with av.open(str(path)) as c:
            v, a = c.streams.video[0], c.streams.audio[0]
            assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
            assert v.codec_context.pix_fmt == "yuv420p"
            assert (v.codec_context.width, v.codec_context.height) == (256, 256)
            assert abs(c.duration / 1e6 - 8.0) < 0.25
        audio, rate = decode_audio(path)
        assert rate == RATE and abs(len(audio) / rate - 8.0) < 0.25


def test_solo_audio_has_sound_in_every_3s_window(solo):
    for path in solo[1]:
        audio, rate = decode_audio(path)
        win, hop = 3 * rate, rate // 2
        rms = [np.sqrt(np.mean(audio[i:i + win] ** 2)) for i in range(0, len(audio) - win + 1, hop)]
        assert min(rms) > 0.01, (path.name, min(rms))  # -40 dBFS; clips are normalised to about -20


def _assert_separable(features: dict[str, list[np.ndarray]]) -> None:
    """Every clip is nearer to its own label's other clips than to any other label's clips."""
    for label, feats in features.items():
        for i, f in enumerate(feats):
            own = min(np.linalg.norm(f - g) for j, g in enumerate(feats) if j != i)
            other = min(np.linalg.norm(f - g) for lab, gs in features.items() if lab != label for g in gs)
            assert own < other, (label, own, other)


def test_solo_labels_have_distinct_spectra(solo):
    features = {lab: [band_spectrum(decode_audio(p)[0]) for p in solo[1] if p.parent.name == lab] for lab in SOLO_LABELS}
    _assert_separable(features)


@pytest.mark.parametrize("backend", ["fluidsynth", "numpy"])
def test_backends_give_distinct_timbres(backend):
    if backend == "fluidsynth" and not fluidsynth_available():
        pytest.skip("fluidsynth or soundfont not installed")
    features = {lab: [band_spectrum(render_clip(get_instrument(lab), 4.0, seed, backend=backend)) for seed in range(3)]
                for lab in DEFAULT_LABELS}
    _assert_separable(features)


def test_pictures_move_and_differ_between_labels(solo):
    firsts = {}
    for path in solo[1]:
        frames = decode_frames(path, step=12).astype(np.float32)
        assert np.abs(np.diff(frames, axis=0)).mean() > 1.0, path.name  # not a still image
        firsts.setdefault(path.parent.name, frames[0])
    for a, b in itertools.combinations(firsts.values(), 2):
        assert np.abs(a - b).mean() > 10.0


def test_melodies_have_no_long_silences():
    for inst, seed in itertools.product(CATALOG.values(), range(5)):
        notes = sorted(random_melody(inst, 8.0, np.random.default_rng(seed)), key=lambda n: n.start)
        assert notes and notes[0].start < MAX_REST_S
        assert all(0 <= n.pitch <= 127 and 1 <= n.velocity <= 127 for n in notes)
        end = 0.0
        for n in notes:
            assert n.start - end <= MAX_REST_S + 1e-6, inst.label
            end = max(end, n.start + n.duration)
        if not inst.percussive:
            assert all(inst.low <= n.pitch <= inst.high for n in notes)


def test_midi_bytes_structure():
    data = midi_bytes(random_melody(get_instrument("violin"), 4.0, np.random.default_rng(0)), 40, 4.0)
    assert data[:4] == b"MThd" and struct.unpack(">IHHH", data[4:14]) == (6, 0, 1, 480)
    assert data[14:18] == b"MTrk" and struct.unpack(">I", data[18:22])[0] == len(data) - 22
    assert data.endswith(b"\xff\x2f\x00") and bytes([0xC0, 40]) in data


def test_duet_manifest_boxes_and_mixture(duets):
    out, entries = duets
    manifest = json.loads((out / "duets.json").read_text())
    assert manifest["duets"] == entries and len(entries) == 2
    for entry in entries:
        w, h = entry["width"], entry["height"]
        assert json.loads((out / f"{entry['name']}.json").read_text()) == entry
        with av.open(str(out / entry["video"])) as c:
            assert c.streams.video[0].codec_context.name == "h264" and c.streams.audio[0].codec_context.name == "aac"
            assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == (w, h)
        mix, rate = decode_audio(out / entry["video"])
        stems = []
        for src in entry["sources"]:
            x0, y0, x1, y1 = src["box"]
            assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
            assert (x1 <= w // 2) if src["side"] == "left" else (x0 >= w // 2)
            stem, stem_rate = read_wav(out / src["stem"])
            assert stem_rate == rate and np.sqrt(np.mean(stem ** 2)) > 0.01
            stems.append(stem)
        n = min(len(mix), len(stems[0]))
        assert np.corrcoef(mix[:n], (stems[0] + stems[1])[:n])[0, 1] > 0.95
        assert {s["label"] for s in entry["sources"]} == {p.stem for p in (out / entry["name"]).glob("*.wav")}


def test_duet_boxes_cover_the_instruments(duets):
    """Each box holds non-background pixels (colour far from the background's top corner)."""
    out, entries = duets
    for entry in entries:
        frame = decode_frames(out / entry["video"], step=1000)[0].astype(np.float32)
        for src in entry["sources"]:
            x0, y0, x1, y1 = src["box"]
            inside = frame[y0:y1, x0:x1]
            corner = frame[:8, :8].reshape(-1, 3).mean(0) if src["side"] == "left" else frame[:8, -8:].reshape(-1, 3).mean(0)
            assert np.abs(inside - corner).sum(-1).max() > 100  # something not background inside


def test_load_duets_absolute_paths(duets):
    out, _ = duets
    for entry in load_duets(out):
        assert os.path.isabs(entry["video"]) and os.path.exists(entry["video"])
        assert all(os.path.exists(s["stem"]) for s in entry["sources"])


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


def test_determinism(tmp_path, solo):
    out, paths = solo
    path = paths[0]
    again = make_solo_video(tmp_path / path.name, path.parent.name, 8.0, seed=_seed_of(path))
    np.testing.assert_array_equal(decode_audio(again)[0], decode_audio(path)[0])
    other = make_solo_video(tmp_path / "other.mp4", path.parent.name, 8.0, seed=_seed_of(path) + 1)
    assert not np.array_equal(decode_audio(other)[0][:RATE], decode_audio(path)[0][:RATE])
    a = render_clip(get_instrument("violin"), 2.0, 7, backend="numpy")
    np.testing.assert_array_equal(a, render_clip(get_instrument("violin"), 2.0, 7, backend="numpy"))


def _seed_of(path) -> int:
    from avsep.synth.generate import derive_seed

    label, index = path.stem.rsplit("_", 1)
    return derive_seed(0, label, int(index))


def test_existing_outputs_are_skipped(solo, duets):
    out, paths = solo
    stamps = {p: p.stat().st_mtime_ns for p in paths}
    assert make_solo_collection(out, SOLO_LABELS, videos_per_label=2, seed=0, progress=False) == paths
    assert {p: p.stat().st_mtime_ns for p in paths} == stamps
    dout, entries = duets
    video = dout / entries[0]["video"]
    stamp = video.stat().st_mtime_ns
    assert make_duets(dout, pairs=[("violin", "drum"), ("flute", "acoustic_guitar")], seconds=6.0) == entries
    assert video.stat().st_mtime_ns == stamp
    assert not list(out.rglob("*.part"))


def test_cli_solo(tmp_path):
    assert main(["generate", "solo", str(tmp_path), "--labels", "trumpet", "--per-label", "1", "--seconds", "2",
                 "--workers", "1", "--size", "160x120"]) == 0
    (path,) = (tmp_path / "trumpet").glob("*.mp4")
    with av.open(str(path)) as c:
        assert (c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height) == (160, 120)


def test_fallbacks_make_valid_videos(tmp_path, monkeypatch):
    """Without fluidsynth and the emoji font: numpy synthesizer and drawn shapes."""
    import avsep.synth.videos as videos

    monkeypatch.setattr(videos, "instrument_sprite", shape_sprite)
    path = make_solo_video(tmp_path / "banjo.mp4", "banjo", 3.0, seed=1, backend="numpy")
    audio, rate = decode_audio(path)
    assert abs(len(audio) / rate - 3.0) < 0.25 and np.sqrt(np.mean(audio ** 2)) > 0.02
    frame = decode_frames(path)[0]
    target = np.array(get_instrument("banjo").color, dtype=np.float32)
    assert (np.abs(frame.astype(np.float32) - target).sum(-1) < 40).sum() > 200  # the label's colour is drawn
