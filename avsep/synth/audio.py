"""The sound of a video: melodies per pool, rendered with fluidsynth (or numpy), with rests and
a random level per source; WAV reading and writing.

All audio is mono float32 in [-1, 1], shape ``[samples]``.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.io import wavfile

from avsep.synth.instruments import Instrument, get_instrument
from avsep.synth.logs import warn_once
from avsep.synth.loudness import random_loudness, set_loudness
from avsep.synth.midi import Note, add_rests, random_melody
from avsep.synth.render import DEFAULT_RATE, render_numpy
from avsep.synth.seeds import check_pool, derive_seed
from avsep.synth.soundfonts import fluidsynth_available, pick_soundfont, render_fluidsynth_parts

__all__ = ["DEFAULT_RATE", "Stems", "render_clip", "render_stems", "resolve_backend"]


@dataclass
class Stems:
    """Rendered sources: ``audio`` one float32 ``[n]`` per label, the ``soundfont`` path (or
    ``"numpy"``), each source's level in dBFS and its rests as ``(start, end)`` seconds."""

    audio: list[np.ndarray]
    soundfont: str
    loudness_db: list[float]
    rests: list[list[tuple[float, float]]]


def resolve_backend(backend: str) -> str:
    """``"fluidsynth"`` or ``"numpy"``: resolves ``"auto"``, logging the fallback once."""
    if backend not in ("auto", "fluidsynth", "numpy"):
        raise ValueError(f"unknown audio backend {backend!r}; expected auto, fluidsynth or numpy")
    if backend != "auto":
        return backend
    if fluidsynth_available():
        return "fluidsynth"
    warn_once("numpy", "fluidsynth or a GM soundfont not found: using the numpy synthesizer")
    return "numpy"


def melody(label: str, seconds: float, seed: int, pool: str = "train", rests: bool = True
           ) -> tuple[list[Note], list[tuple[float, float]]]:
    """The notes of ``label`` for a clip, and its rests. The seed mixes in the pool's name,
    so the held-out pool never replays a training melody, whatever seed it is given."""
    rng = np.random.default_rng(derive_seed(seed, "melody", check_pool(pool), label))
    notes = random_melody(get_instrument(label), seconds, rng)
    return add_rests(notes, seconds, rng) if rests else (notes, [])


def _synthesize(parts: list[tuple[Instrument, list[Note]]], seconds: float, rate: int, backend: str,
                soundfont: str | None, seed: int) -> tuple[list[np.ndarray], str]:
    """Render every part; returns the audio and what rendered it (soundfont path or "numpy")."""
    if backend == "fluidsynth" and soundfont is None:
        warn_once("no-sf", "no soundfont installed: using the numpy synthesizer")
    if backend == "fluidsynth" and soundfont is not None:
        try:
            audio = render_fluidsynth_parts([(notes, inst.program) for inst, notes in parts], seconds, rate, soundfont)
            return audio, soundfont
        except (OSError, subprocess.SubprocessError) as exc:
            warn_once("fs-fail", f"fluidsynth failed ({exc}); using the numpy synthesizer")
    audio = [render_numpy(notes, inst, seconds, rate, seed=derive_seed(seed, "numpy", inst.label))
             for inst, notes in parts]
    return audio, "numpy"


def render_stems(labels: Sequence[str], seconds: float, seed: int, rate: int = DEFAULT_RATE,
                 backend: str = "auto", pool: str = "train", rests: bool = True) -> Stems:
    """One source per label, all from one soundfont of ``pool`` (one fluidsynth run), each at
    its own random level in ``LOUDNESS_RANGE_DB``. Deterministic given ``seed``."""
    backend = resolve_backend(backend)
    rng = np.random.default_rng(derive_seed(seed, "audio", check_pool(pool)))
    soundfont = pick_soundfont(pool, rng) if backend == "fluidsynth" else None
    tunes = [melody(label, seconds, seed, pool, rests) for label in labels]
    parts = [(get_instrument(label), notes) for label, (notes, _) in zip(labels, tunes)]
    audio, source = _synthesize(parts, seconds, rate, backend, soundfont, seed)
    levels = [random_loudness(rng) for _ in labels]
    audio = [set_loudness(a, rate, db) for a, db in zip(audio, levels)]
    return Stems(audio, source, levels, [r for _, r in tunes])


def render_clip(inst: Instrument, seconds: float, seed: int, rate: int = DEFAULT_RATE,
                backend: str = "auto", level_db: float = -20.0) -> np.ndarray:
    """A random melody for ``inst`` without rests, at ``level_db`` dBFS, from the training
    pool's first soundfont (or numpy); float32 ``[round(seconds * rate)]``."""
    backend = resolve_backend(backend)
    notes, _ = melody(inst.label, seconds, seed, "train", rests=False)
    soundfont = pick_soundfont("train", np.random.default_rng(0)) if backend == "fluidsynth" else None
    (audio,), _ = _synthesize([(inst, notes)], seconds, rate, backend, soundfont, seed)
    return set_loudness(audio, rate, level_db)

