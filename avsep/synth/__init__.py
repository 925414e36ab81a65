"""Synthetic, offline test data for avsep: solo instrument videos, duets with ground truth,
and broken files.

Sound comes from fluidsynth with a General MIDI soundfont (numpy synthesizer as fallback);
pictures are instrument emoji from Noto Color Emoji (drawn shapes as fallback).
"""
from __future__ import annotations

import importlib
from typing import Any

from avsep.synth.instruments import CATALOG, DEFAULT_LABELS, Instrument, get_instrument

_GENERATE_API = ("derive_seed", "load_duets", "make_bad_files", "make_duet", "make_duets",
                 "make_solo_collection", "make_solo_video")

__all__ = ["CATALOG", "DEFAULT_LABELS", "Instrument", "get_instrument", *_GENERATE_API]


def __getattr__(name: str) -> Any:
    # Imported lazily so `python -m avsep.synth.generate` does not import the module twice.
    if name in _GENERATE_API:
        return getattr(importlib.import_module(".generate", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
