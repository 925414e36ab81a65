"""Audio of the generator: melodies, rests, MIDI files, soundfont pools, loudness, timbres."""
from __future__ import annotations

import itertools
import logging
import os
import struct

import numpy as np
import pytest
from scipy.signal import stft

from avsep.synth import CATALOG, DEFAULT_LABELS, POOLS, get_instrument
from avsep.synth import soundfonts
from avsep.synth.audio import melody, render_clip, render_stems
from avsep.synth.loudness import LOUDNESS_RANGE_DB, active_rms_db, limit_peaks, set_loudness, window_rms_db
from avsep.synth.midi import MAX_REST_S, REST_MAX_FRACTION, REST_RANGE_S, Part, add_rests, midi_bytes, multi_midi_bytes
from avsep.synth.midi import random_melody
from avsep.synth.seeds import derive_seed
from avsep.synth.soundfonts import POOL_SOUNDFONTS, fluidsynth_available, pool_soundfonts

RATE = 22050


def band_spectrum(audio: np.ndarray, rate: int = RATE) -> np.ndarray:
    """Mean log power in 32 log-spaced bands (60 Hz - 10 kHz), level-normalised; ``[32]``."""
    f, _, z = stft(audio, rate, nperseg=1024)
    power = np.abs(z) ** 2
    edges = np.geomspace(60, 10000, 33)
    bands = np.array([power[(f >= lo) & (f < hi)].sum(0).mean() for lo, hi in zip(edges[:-1], edges[1:])])
    logp = np.log(bands + 1e-10)
    return logp - logp.mean()


def nearest_centroid_accuracy(features: dict[str, list[np.ndarray]]) -> float:
    """Leave-one-out: how often a clip is nearer to the mean of its own label's other clips
    than to any other label's mean (melodies differ a lot, so single clips may not be)."""
    hits = []
    for label, feats in features.items():
        for i, f in enumerate(feats):
            own = np.linalg.norm(f - np.mean([g for j, g in enumerate(feats) if j != i], axis=0))
            other = min(np.linalg.norm(f - np.mean(gs, axis=0)) for lab, gs in features.items() if lab != label)
            hits.append(own < other)
    return float(np.mean(hits))


def test_melodies_have_no_long_silences_between_notes():
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


def test_rests_silence_stretches_but_keep_most_of_the_clip():
    inst, with_rests = get_instrument("violin"), 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        notes, rests = add_rests(random_melody(inst, 8.0, rng), 8.0, rng)
        with_rests += bool(rests)
        assert sum(b - a for a, b in rests) <= REST_MAX_FRACTION * 8.0 + 1e-9
        for a, b in rests:
            assert REST_RANGE_S[0] - 1e-9 <= b - a <= REST_RANGE_S[1] + 1e-9
            assert all(not (a < n.start + n.duration and n.start < b) for n in notes)  # nothing sounds inside
        for (_, b), (a, _) in zip(rests, rests[1:]):
            assert a - b >= 1.0
    assert 10 < with_rests < 40  # some clips pause, most do not


def test_held_out_melodies_differ_from_training_ones():
    for label in DEFAULT_LABELS:
        for seed in range(3):
            train, _ = melody(label, 6.0, seed, "train")
            test, _ = melody(label, 6.0, seed, "test")
            assert train != test and train == melody(label, 6.0, seed, "train")[0]
    with pytest.raises(ValueError, match="unknown pool"):
        melody("violin", 6.0, 0, "validation")


def test_collections_never_share_a_melody_between_pools():
    """As make_solo_collection seeds them: video i of a label in one pool vs every video of the other."""
    for label in ("violin", "drum"):
        tunes = {pool: [tuple(n.pitch for n in melody(label, 4.0, derive_seed(derive_seed(0, pool, label, i), "audio"),
                                                      pool)[0][:12]) for i in range(8)] for pool in POOLS}
        assert not set(tunes["train"]) & set(tunes["test"]), label


def test_midi_bytes_structure():
    data = midi_bytes(random_melody(get_instrument("violin"), 4.0, np.random.default_rng(0)), 40, 4.0)
    assert data[:4] == b"MThd" and struct.unpack(">IHHH", data[4:14]) == (6, 0, 1, 480)
    assert data[14:18] == b"MTrk" and struct.unpack(">I", data[18:22])[0] == len(data) - 22
    assert data.endswith(b"\xff\x2f\x00") and bytes([0xC0, 40]) in data
    multi = multi_midi_bytes([Part([], 40, stop=1.0), Part([], None, stop=2.0), Part([], 73)], 3.0)
    assert bytes([0xC0, 40]) in multi and bytes([0xC1, 73]) in multi  # one channel per melodic part
    assert bytes([0xB0, 120, 0]) in multi and bytes([0xB9, 120, 0]) in multi  # All Sound Off, drums on ch. 10


def test_pool_soundfonts(monkeypatch, caplog):
    monkeypatch.delenv("AVSEP_SOUNDFONT", raising=False)
    assert not set(POOL_SOUNDFONTS["train"]) & set(POOL_SOUNDFONTS["test"])
    for pool in ("train", "test"):
        installed = [p for p in POOL_SOUNDFONTS[pool] if os.path.isfile(p)]
        if installed:
            assert pool_soundfonts(pool) == installed
    monkeypatch.setenv("AVSEP_SOUNDFONT", "/some/where/My.sf2")
    assert pool_soundfonts("test") == ["/some/where/My.sf2"]
    monkeypatch.delenv("AVSEP_SOUNDFONT")
    # Without the held-out soundfont: another installed one, and one warning that says so.
    monkeypatch.setitem(POOL_SOUNDFONTS, "test", ("/nowhere/missing.sf3",))
    monkeypatch.setattr(soundfonts, "find_soundfont", lambda: "/usr/share/sounds/sf2/Other.sf2")
    monkeypatch.setattr(soundfonts, "warn_once", lambda key, msg: logging.getLogger("avsep.synth").warning(msg))
    with caplog.at_level(logging.WARNING, logger="avsep.synth"):
        assert pool_soundfonts("test") == ["/usr/share/sounds/sf2/Other.sf2"]
    assert "not from an unseen soundfont" in caplog.text


def test_loudness_tools():
    rng = np.random.default_rng(0)
    tone = np.sin(2 * np.pi * 440 * np.arange(2 * RATE) / RATE).astype(np.float32)
    with_gap = np.concatenate([tone, np.zeros(RATE, np.float32), tone])
    assert abs(active_rms_db(with_gap, RATE) - active_rms_db(tone, RATE)) < 0.1  # rests do not count
    assert active_rms_db(np.zeros(RATE), RATE) == -np.inf
    assert np.isfinite(window_rms_db(tone, RATE)).all()
    spiky = rng.normal(0, 0.05, RATE).astype(np.float32)
    spiky[::2000] = 3.0
    limited = limit_peaks(spiky, RATE)
    assert np.abs(limited).max() <= 0.9 + 1e-6 and np.abs(limited[1000:1500] - spiky[1000:1500]).max() < 0.02
    for target in (-35.0, -10.0):
        assert abs(active_rms_db(set_loudness(spiky, RATE, target), RATE) - target) < 0.5


@pytest.mark.parametrize("pool", ["train", "test"])
def test_stems_loudness_in_range_and_soundfont_of_the_pool(pool):
    if not fluidsynth_available():
        pytest.skip("fluidsynth or soundfont not installed")
    stems = render_stems(["violin", "drum", "flute"], 4.0, seed=3, pool=pool)
    assert stems.soundfont in pool_soundfonts(pool)
    for audio, level in zip(stems.audio, stems.loudness_db):
        assert len(audio) == 4 * RATE and np.abs(audio).max() <= 0.9 + 1e-6
        assert LOUDNESS_RANGE_DB[0] - 0.5 <= active_rms_db(audio, RATE) <= LOUDNESS_RANGE_DB[1] + 0.5
        assert LOUDNESS_RANGE_DB[0] <= level <= LOUDNESS_RANGE_DB[1]


@pytest.mark.parametrize("backend", ["fluidsynth", "numpy"])
def test_backends_give_distinct_timbres(backend):
    if backend == "fluidsynth" and not fluidsynth_available():
        pytest.skip("fluidsynth or soundfont not installed")
    features = {lab: [band_spectrum(render_clip(get_instrument(lab), 3.0, seed, backend=backend)) for seed in range(4)]
                for lab in DEFAULT_LABELS}
    assert nearest_centroid_accuracy(features) >= 0.75
    a = render_clip(get_instrument("violin"), 2.0, 7, backend=backend)
    np.testing.assert_array_equal(a, render_clip(get_instrument("violin"), 2.0, 7, backend=backend))
