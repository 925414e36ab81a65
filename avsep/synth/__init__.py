"""Synthetic, offline data for avsep: solo instrument videos, ensembles (2-4 players) with
ground truth, and broken files, from a training pool or a held-out pool.

Sound comes from fluidsynth with General MIDI soundfonts (numpy synthesizer as fallback);
pictures are instrument and prop emoji from Noto Color Emoji (drawn shapes as fallback), held
by drawn people in front of wallpaper photographs or drawn rooms. See docs/synthetic_data.md.
"""
from __future__ import annotations

import importlib
from typing import Any

from avsep.synth.instruments import CATALOG, DEFAULT_LABELS, Instrument, get_instrument
from avsep.synth.seeds import POOLS

_LAZY = {
    "derive_seed": "seeds", "load_duets": "ensembles", "make_duet": "ensembles", "make_duets": "ensembles",
    "make_ensemble": "ensembles", "make_bad_files": "generate", "make_solo_collection": "generate",
    "make_solo_video": "generate", "load_solo_meta": "generate", "background_files": "backgrounds",
    "use_folder": "backgrounds",
    "contact_sheet": "contact",
}

__all__ = ["CATALOG", "DEFAULT_LABELS", "Instrument", "POOLS", "get_instrument", *_LAZY]


def __getattr__(name: str) -> Any:
    # Imported lazily: importing the package stays cheap, and `python -m avsep.synth.generate`
    # does not import the module twice.
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
