"""General MIDI soundfonts per pool, and rendering with the fluidsynth CLI.

The training pool sounds like TimGM6mb or FluidR3 (one picked per video); the held-out pool
like MuseScore General, a soundfont whose samples a model trained on the others never heard.
``$AVSEP_SOUNDFONT`` replaces both pools' soundfonts. All audio is mono float32 ``[samples]``.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import warnings
from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy.io import wavfile

from avsep.synth.logs import warn_once
from avsep.synth.midi import Note, Part, shift, write_midi
from avsep.synth.seeds import check_pool

POOL_SOUNDFONTS: dict[str, tuple[str, ...]] = {
    "train": ("/usr/share/sounds/sf2/TimGM6mb.sf2", "/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    "test": ("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3",),
}
# Other places soundfonts live, used only when a pool's own soundfonts are missing.
OTHER_SOUNDFONTS = (
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
# Silence between the parts of a multi-part render (each part is cut by All Sound Off at its end).
PART_GAP_S = 0.5


def _installed(paths: Sequence[str]) -> list[str]:
    return [p for p in paths if p and os.path.isfile(p)]


@lru_cache(maxsize=1)
def find_soundfont() -> str | None:
    """Path of any General MIDI soundfont (``$AVSEP_SOUNDFONT`` first), or ``None``."""
    env = os.environ.get("AVSEP_SOUNDFONT")
    candidates = [env] if env else []
    candidates += [p for pool in POOL_SOUNDFONTS.values() for p in pool] + list(OTHER_SOUNDFONTS)
    candidates += sorted(glob.glob("/usr/share/sounds/sf2/*.sf2")) + sorted(glob.glob("/usr/share/soundfonts/*.sf2"))
    found = _installed(candidates)
    return found[0] if found else None


def pool_soundfonts(pool: str) -> list[str]:
    """The soundfonts the ``pool`` draws from: ``[$AVSEP_SOUNDFONT]`` when set, else the pool's
    installed ones, else any installed soundfont (logged once: held-out audio then comes from a
    soundfont a model may have heard), else ``[]``."""
    check_pool(pool)
    env = os.environ.get("AVSEP_SOUNDFONT")
    if env:
        return [env]
    own = _installed(POOL_SOUNDFONTS[pool])
    if own:
        return own
    fallback = find_soundfont()
    if fallback is None:
        return []
    note = " so the held-out audio is not from an unseen soundfont" if pool == "test" else ""
    warn_once(f"sf-{pool}", f"no soundfont of the {pool!r} pool installed; using {fallback}{note}")
    return [fallback]


def pick_soundfont(pool: str, rng: np.random.Generator) -> str | None:
    """One of ``pool_soundfonts(pool)``, uniformly; ``None`` when no soundfont is installed."""
    fonts = pool_soundfonts(pool)
    return fonts[int(rng.integers(len(fonts)))] if fonts else None


def fluidsynth_available() -> bool:
    """True when both the fluidsynth CLI and a soundfont are installed."""
    return shutil.which("fluidsynth") is not None and find_soundfont() is not None


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Cut or zero-pad ``x`` to ``n`` samples; float32 ``[n]``."""
    return np.pad(x[:n], (0, max(0, n - len(x)))).astype(np.float32)


def _run_fluidsynth(parts: list[Part], end: float, rate: int, soundfont: str) -> np.ndarray:
    """Render a MIDI file of ``parts`` until ``end`` seconds; mono float32."""
    with tempfile.TemporaryDirectory(prefix="avsep-fs-") as tmp:
        mid, wav = os.path.join(tmp, "in.mid"), os.path.join(tmp, "out.wav")
        write_midi(mid, parts, end)
        # Float output (-O float) avoids both clipping and dithering, so renders are identical
        # between runs; dynamic sample loading reads only the samples the file plays, which
        # makes loading the big soundfonts many times faster (same output).
        cmd = ["fluidsynth", "-ni", "-q", "-g", "0.5", "-R", "0", "-C", "0", "-O", "float",
               "-o", "synth.dynamic-sample-loading=1", "-F", wav, "-r", str(rate), soundfont, mid]
        subprocess.run(cmd, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=300)
        with warnings.catch_warnings():  # fluidsynth writes a LIST chunk scipy does not parse
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            _, data = wavfile.read(wav)
    data = np.asarray(data, dtype=np.float32)
    return data.mean(axis=1) if data.ndim == 2 else data


def render_fluidsynth_parts(parts: Sequence[tuple[list[Note], int | None]], seconds: float, rate: int,
                            soundfont: str | None = None) -> list[np.ndarray]:
    """Render each ``(notes, program)`` part (program ``None``: percussion) for ``seconds``
    with one fluidsynth run: the parts play one after another, each on its own channel and cut
    by All Sound Off at its end, so the soundfont is loaded once however many parts there are.
    Returns one float32 ``[round(seconds * rate)]`` array per part.
    """
    soundfont = soundfont or find_soundfont()
    if soundfont is None:
        raise OSError("no soundfont installed")
    step = seconds + PART_GAP_S
    timed = [Part(shift(notes, k * step), program, stop=k * step + seconds)
             for k, (notes, program) in enumerate(parts)]
    audio = _run_fluidsynth(timed, len(parts) * step, rate, soundfont)
    n = round(seconds * rate)
    return [fit_length(audio[round(k * step * rate):], n) for k in range(len(parts))]


def render_fluidsynth(notes: list[Note], program: int | None, seconds: float, rate: int,
                      soundfont: str | None = None) -> np.ndarray:
    """One part (see ``render_fluidsynth_parts``); mono float32 ``[round(seconds * rate)]``."""
    return render_fluidsynth_parts([(notes, program)], seconds, rate, soundfont)[0]
