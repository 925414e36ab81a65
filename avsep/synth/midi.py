"""Random melodies, rests, and a tiny Standard MIDI File (type 0) writer.

Only what the synthetic data needs: note on/off, program changes, All Sound Off, one tempo.
Timing is kept in seconds everywhere in this package and converted to ticks only when writing.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import numpy as np

from avsep.synth.instruments import Instrument

TICKS_PER_BEAT = 480
PERCUSSION_CHANNEL = 9  # GM channel 10, zero-based
# Scales as semitone offsets from the root; pentatonic ones avoid harsh intervals in chords.
SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "major_pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
}
# Longest silence within a melody (between notes); see ``add_rests`` for longer pauses.
MAX_REST_S = 0.6
# Longer pauses that ``add_rests`` cuts into some clips, and how much of a clip they may take.
REST_PROB = 0.35
REST_RANGE_S = (0.5, 2.5)
REST_MAX_FRACTION = 0.3


@dataclass(frozen=True)
class Note:
    """One note: onset and length in seconds, MIDI pitch (or GM drum key) and velocity 1-127."""

    start: float
    duration: float
    pitch: int
    velocity: int


def _scale_pitches(inst: Instrument, rng: np.random.Generator) -> np.ndarray:
    """All pitches of a random key and scale that fall inside the instrument's range."""
    steps = SCALES[rng.choice(sorted(SCALES))]
    root = int(rng.integers(0, 12))
    pitches = [p for p in range(inst.low, inst.high + 1) if (p - root) % 12 in steps]
    return np.array(pitches)


def _drum_pattern(inst: Instrument, seconds: float, beat: float, rng: np.random.Generator) -> list[Note]:
    """A loose rhythm: a random one-bar pattern repeated with variations and fills."""
    keys = np.array(inst.drum_keys)
    step = beat / 2  # eighth notes
    bar = [(int(rng.choice(keys)) if rng.random() < 0.8 else None) for _ in range(8)]
    notes, t, i = [], 0.0, 0
    while t < seconds:
        key = bar[i % 8]
        if rng.random() < 0.2:  # variation / fill
            key = int(rng.choice(keys))
        if key is not None:
            notes.append(Note(t, step * 0.9, key, int(rng.integers(70, 121))))
        t += step
        i += 1
    return notes


def random_melody(inst: Instrument, seconds: float, rng: np.random.Generator) -> list[Note]:
    """A random melody (or rhythm, for percussion) of about ``seconds`` for ``inst``.

    A random walk over a random scale within the instrument's range, with varying note lengths
    from ``inst.beats`` and short rests (never longer than ``MAX_REST_S``), optionally with
    two-note chords. Notes are clipped to end by ``seconds``.
    """
    tempo = float(rng.uniform(90, 140))
    beat = 60.0 / tempo
    if inst.percussive:
        return _drum_pattern(inst, seconds, beat, rng)
    pitches = _scale_pitches(inst, rng)
    idx = int(rng.integers(len(pitches) // 4, 3 * len(pitches) // 4 + 1))
    notes: list[Note] = []
    t = float(rng.uniform(0, 0.2))
    while t < seconds - 0.1:
        if notes and rng.random() < 0.15:
            t += min(beat * float(rng.choice([0.5, 1.0])), MAX_REST_S)
            continue
        dur = beat * float(rng.choice(inst.beats))
        idx = int(np.clip(idx + rng.choice([-3, -2, -1, -1, 0, 1, 1, 2, 3]), 0, len(pitches) - 1))
        vel = int(rng.integers(70, 115))
        length = min(dur * 0.95, seconds - t)
        notes.append(Note(t, length, int(pitches[idx]), vel))
        if rng.random() < inst.chord_prob and idx + 2 < len(pitches):
            notes.append(Note(t, length, int(pitches[idx + 2]), max(vel - 15, 30)))
        t += dur
    return notes


def add_rests(notes: list[Note], seconds: float, rng: np.random.Generator, prob: float = REST_PROB
              ) -> tuple[list[Note], list[tuple[float, float]]]:
    """Silence, with probability ``prob``, one or two stretches of ``REST_RANGE_S`` seconds.

    Players pause in real recordings, and a model must learn that a silent player's region
    holds no sound. Notes starting inside a rest are dropped, notes sounding into one are cut at
    its start (their release still rings briefly). Rests leave at least one second of music
    between them and together take at most ``REST_MAX_FRACTION`` of the clip, so most of each
    clip sounds. Returns the notes and the rests as ``(start, end)`` seconds.
    """
    if rng.random() >= prob:
        return notes, []
    budget = REST_MAX_FRACTION * seconds
    rests: list[tuple[float, float]] = []
    for _ in range(int(rng.integers(1, 3))):
        free = budget - sum(b - a for a, b in rests)
        if free < REST_RANGE_S[0]:
            break
        length = float(rng.uniform(REST_RANGE_S[0], min(REST_RANGE_S[1], free)))
        start = float(rng.uniform(0.0, max(0.0, seconds - length)))
        if all(start + length + 1.0 <= a or start >= b + 1.0 for a, b in rests):
            rests.append((start, min(seconds, start + length)))
    kept = []
    for n in notes:
        cut = min([a for a, _ in rests if n.start < a < n.start + n.duration], default=None)
        if any(a <= n.start < b for a, b in rests) or (cut is not None and cut - n.start < 0.05):
            continue  # inside a rest, or a blip once cut
        kept.append(n if cut is None else Note(n.start, cut - n.start, n.pitch, n.velocity))
    return kept, sorted(rests)


def _vlq(value: int) -> bytes:
    """MIDI variable-length quantity: 7 bits per byte, high bit set on all but the last."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_bytes(notes: list[Note], program: int | None, end: float, tempo_bpm: float = 120.0) -> bytes:
    """Encode ``notes`` as a type-0 Standard MIDI File.

    ``program`` is the GM program on channel 1, or ``None`` to play on the percussion channel.
    ``end`` (seconds) places the end-of-track event, so renderers stop there (plus release).
    """
    return multi_midi_bytes([Part(notes, program)], end, tempo_bpm)


@dataclass(frozen=True)
class Part:
    """The notes of one instrument, its GM program (``None``: percussion) and when it is cut:
    at ``stop`` seconds an All-Sound-Off silences the part's channel at once (``None``: never)."""

    notes: list[Note]
    program: int | None
    stop: float | None = None


def _channels(parts: list[Part]) -> list[int]:
    """One MIDI channel per part: percussion on GM channel 10, the others on 1, 2, ... (skipping 10)."""
    melodic = [c for c in range(16) if c != PERCUSSION_CHANNEL]
    out, k = [], 0
    for part in parts:
        if part.program is None:
            out.append(PERCUSSION_CHANNEL)
        else:
            out.append(melodic[k % len(melodic)])
            k += 1
    return out


def multi_midi_bytes(parts: list[Part], end: float, tempo_bpm: float = 120.0) -> bytes:
    """Encode several parts as one type-0 Standard MIDI File, each part on its own channel
    (see ``Part``); the end-of-track event is at ``end`` seconds or after the last event."""
    ticks_per_s = TICKS_PER_BEAT * tempo_bpm / 60.0
    events: list[tuple[int, int, bytes]] = [(0, 0, b"\xff\x51\x03" + round(60e6 / tempo_bpm).to_bytes(3, "big"))]
    for part, channel in zip(parts, _channels(parts)):
        if part.program is not None:
            events.append((0, 1, bytes([0xC0 | channel, part.program])))
        for n in part.notes:
            on = round(n.start * ticks_per_s)
            off = max(on + 1, round((n.start + n.duration) * ticks_per_s))
            # At equal ticks: note-offs (2) before note-ons (3), so repeated notes restart.
            events.append((on, 3, bytes([0x90 | channel, n.pitch, n.velocity])))
            events.append((off, 2, bytes([0x80 | channel, n.pitch, 0])))
        if part.stop is not None:  # CC 120, All Sound Off: also cuts release tails
            events.append((round(part.stop * ticks_per_s), 4, bytes([0xB0 | channel, 120, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    end_tick = max([round(end * ticks_per_s)] + [e[0] for e in events])
    body, last = bytearray(), 0
    for tick, _, data in events + [(end_tick, 9, b"\xff\x2f\x00")]:
        body += _vlq(tick - last) + data
        last = tick
    head = b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS_PER_BEAT)
    return head + b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def shift(notes: list[Note], offset: float) -> list[Note]:
    """``notes`` moved ``offset`` seconds later."""
    return [Note(n.start + offset, n.duration, n.pitch, n.velocity) for n in notes]


def write_midi(path: str | os.PathLike, parts: list[Part], end: float) -> None:
    """Write ``parts`` to ``path`` as a type-0 SMF (see ``multi_midi_bytes``)."""
    with open(path, "wb") as f:
        f.write(multi_midi_bytes(parts, end))
