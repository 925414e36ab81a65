"""The numpy synthesizer: the fallback voices for machines without fluidsynth or a soundfont.

Additive harmonics, Karplus-Strong strings and noise drums give every label its own clearly
different spectrum, so the data stay learnable without sampled timbres.
All audio here is mono float32 in [-1, 1], shape ``[samples]``.
"""
from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from avsep.synth.instruments import Instrument
from avsep.synth.midi import Note
from avsep.synth.soundfonts import fit_length


DEFAULT_RATE = 22050


def _midi_hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def _env(n: int, rate: int, attack: float, release: float, decay: float = 0.0) -> np.ndarray:
    """Linear attack, exponential decay (rate ``decay`` per second), linear release; ``[n]``."""
    t = np.arange(n) / rate
    env = np.minimum(1.0, t / max(attack, 1e-4)) * np.exp(-decay * t)
    rel = int(release * rate)
    if 0 < rel < n:
        env[-rel:] *= np.linspace(1, 0, rel)
    return env


def _additive(freq: float, n: int, rate: int, amps, vib_hz: float = 0.0, vib_depth: float = 0.0,
              stretch: float = 0.0, decays=None) -> np.ndarray:
    """Sum of harmonics ``k * freq`` with amplitudes ``amps[k-1]`` (optionally stretched,
    per-partial exponential decays and a shared vibrato); ``[n]``."""
    t = np.arange(n) / rate
    phase = 2 * np.pi * freq * t
    if vib_hz:
        phase += freq * vib_depth / vib_hz * np.sin(2 * np.pi * vib_hz * t)
    out = np.zeros(n)
    for k, a in enumerate(amps, start=1):
        ratio = k * np.sqrt(1 + stretch * k * k)
        if ratio * freq >= rate / 2 * 0.95:  # stay below Nyquist: no aliasing
            break
        partial = a * np.sin(ratio * phase)
        if decays is not None:
            partial *= np.exp(-decays[k - 1] * t)
        out += partial
    return out


def _karplus(freq: float, n: int, rate: int, rng: np.random.Generator, feedback: float, bright: float) -> np.ndarray:
    """Karplus-Strong plucked string via one IIR filter call: y[i] = x[i] + g/2 (y[i-L] + y[i-L-1]).

    ``bright`` in (0, 1] low-passes the noise burst (lower = darker, guitar-like)."""
    period = max(2, int(round(rate / freq)))
    burst = rng.uniform(-1, 1, period)
    burst = lfilter([bright], [1, -(1 - bright)], burst)
    x = np.zeros(n)
    x[: min(period, n)] = burst[: min(period, n)]
    a = np.zeros(period + 2)
    a[0], a[period], a[period + 1] = 1.0, -feedback / 2, -feedback / 2
    return lfilter([1.0], a, x)


def _drum_hit(key: int, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """GM percussion key -> kick (pitch sweep), snare (tone + noise), hats (bright noise),
    toms/congas (pitched decaying sines); ``[n]``."""
    t = np.arange(n) / rate
    noise = rng.standard_normal(n)
    if key in (35, 36):
        f = 50 + 90 * np.exp(-t * 30)
        return np.sin(2 * np.pi * np.cumsum(f) / rate) * np.exp(-t * 9)
    if key in (38, 40):
        return (0.5 * np.sin(2 * np.pi * 185 * t) + 0.8 * noise) * np.exp(-t * 14)
    if key in (42, 44, 46):
        hiss = np.diff(noise, prepend=0.0)  # first difference = crude high-pass
        return 0.5 * hiss * np.exp(-t * (40 if key != 46 else 8))
    base = {45: 100, 47: 140, 50: 190, 62: 380, 63: 300, 64: 210}.get(key, 160)
    f = base * (1 + 0.3 * np.exp(-t * 40))
    return (np.sin(2 * np.pi * np.cumsum(f) / rate) + 0.1 * noise * np.exp(-t * 60)) * np.exp(-t * 12)


def _voice(inst: Instrument, note: Note, n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """One note of the instrument's numpy voice, ``[n]`` samples (note plus its release)."""
    f = _midi_hz(note.pitch)
    k = np.arange(1, 41)
    s = inst.synth
    if s in ("drum", "conga"):
        return _drum_hit(note.pitch, n, rate, rng)
    if s == "pluck":
        return _karplus(f, n, rate, rng, feedback=0.996, bright=0.35)
    if s == "banjo":
        return _karplus(f, n, rate, rng, feedback=0.985, bright=0.9) * _env(n, rate, 0.001, 0.02, 2.0)
    if s == "bowed":  # sawtooth-like with a body resonance and vibrato
        amps = (1 / k) * (1 + 1.5 * np.exp(-((k * f - 2800) / 1200) ** 2))
        return _additive(f, n, rate, amps, 5.5, 0.007) * _env(n, rate, 0.09, 0.08)
    if s == "brass":  # energy peaks around the 3rd-5th harmonic: bright, blaring
        amps = k * np.exp(-k / 2.5)
        return _additive(f, n, rate, amps, 4.5, 0.003) * _env(n, rate, 0.04, 0.05)
    if s == "reed":  # odd harmonics stronger, plus some breath
        amps = (1 / k) * np.where(k % 2 == 1, 1.0, 0.45)
        tone = _additive(f, n, rate, amps, 5.0, 0.004) + 0.03 * rng.standard_normal(n)
        return tone * _env(n, rate, 0.05, 0.06)
    if s == "flute":  # nearly pure tone with breath noise
        tone = _additive(f, n, rate, [1.0, 0.2, 0.08, 0.03], 5.0, 0.005)
        breath = lfilter([0.15], [1, -0.85], rng.standard_normal(n))  # low-passed hiss
        return (tone + 0.1 * breath) * _env(n, rate, 0.07, 0.08)
    if s == "organ":  # square-ish reeds, two slightly detuned banks beating (musette)
        amps = np.where(k % 2 == 1, 1 / k, 0.0)
        tone = _additive(f, n, rate, amps) + _additive(f * 1.004, n, rate, amps)
        return 0.5 * tone * _env(n, rate, 0.03, 0.05)
    if s == "piano":  # inharmonic partials, higher ones dying faster
        return _additive(f, n, rate, k ** -1.3, stretch=3e-4, decays=1.5 + 0.6 * k) * _env(n, rate, 0.003, 0.05)
    if s == "bell":  # xylophone/bell: strongly inharmonic, fast decay
        t = np.arange(n) / rate
        ratios, amps, decays = (1.0, 3.93, 9.6), (1.0, 0.45, 0.15), (5.0, 14.0, 30.0)
        return sum(a * np.sin(2 * np.pi * f * r * t) * np.exp(-d * t)
                   for r, a, d in zip(ratios, amps, decays) if f * r < rate / 2)
    raise ValueError(f"unknown synth voice {s!r}")


def render_numpy(notes: list[Note], inst: Instrument, seconds: float, rate: int = DEFAULT_RATE,
                 seed: int = 0) -> np.ndarray:
    """Render ``notes`` with the instrument's numpy voice; mono float32 ``[round(seconds * rate)]``."""
    rng = np.random.default_rng(seed)
    total = round(seconds * rate)
    out = np.zeros(total + rate)  # one second of headroom for release tails
    tail = 0.6 if inst.synth in ("pluck", "banjo", "piano", "bell", "drum", "conga") else 0.08
    for note in notes:
        start = int(note.start * rate)
        n = min(int((note.duration + tail) * rate), len(out) - start)
        if n <= 0:
            continue
        out[start:start + n] += (note.velocity / 127) * _voice(inst, note, n, rate, rng)
    return fit_length(out, total)
