"""Generate synthetic solo videos, duets with ground truth, and deliberately bad files.

Everything is deterministic given the seed (each file draws from its own seed derived from the
collection seed and the file's identity, so adding labels or videos never changes the others),
written atomically, and skipped when it already exists, so generation can be resumed.

CLI::

    avsep generate solo OUT [--labels violin trumpet] [--per-label 6] [--seconds 8] [--seed 0]
    avsep generate duets OUT [--pairs violin+trumpet] [--count 4] [--seconds 8] [--seed 100]
    avsep generate bad OUT [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from itertools import combinations
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from avsep.utils import atomic_path, atomic_write_text

from avsep.synth.instruments import DEFAULT_LABELS, get_instrument
from avsep.synth.render import DEFAULT_RATE, fluidsynth_available, render_clip, write_wav
from avsep.synth.videos import DEFAULT_FPS, instrument_sprite, make_actor, make_background, render_frames, write_mp4

log = logging.getLogger("avsep.synth")
BAD_KINDS = ("corrupt", "no_audio", "silent", "short")


def derive_seed(seed: int, *keys: str | int) -> int:
    """A 32-bit seed from ``seed`` and identifying keys, stable across runs and platforms
    (``hash()`` of strings is salted per process, so CRC32 is used instead)."""
    words = [seed & 0xFFFFFFFF] + [zlib.crc32(str(k).encode()) for k in keys]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def _backend(backend: str) -> str:
    """Resolve ``"auto"`` once in the parent, logging the fallback a single time."""
    if backend != "auto":
        return backend
    if fluidsynth_available():
        return "fluidsynth"
    log.warning("fluidsynth or a GM soundfont not found: using the numpy synthesizer")
    return "numpy"


def _n_frames(seconds: float, fps: int) -> int:
    return max(1, round(seconds * fps))


def make_solo_video(path: str | os.PathLike, label: str, seconds: float = 8.0, seed: int = 0,
                    size: tuple[int, int] = (256, 256), fps: int = DEFAULT_FPS, rate: int = DEFAULT_RATE,
                    backend: str = "auto", silent: bool = False, audio: bool = True) -> Path:
    """Write one solo video of ``label`` to ``path`` (skipped if it exists); returns the path.

    ``silent`` writes an all-zero audio track and ``audio=False`` no audio stream at all
    (both only for the bad-file tests).
    """
    path = Path(path)
    if path.exists():
        return path
    inst = get_instrument(label)
    rng = np.random.default_rng(derive_seed(seed, "video"))
    n_frames = _n_frames(seconds, fps)
    samples = render_clip(inst, seconds, derive_seed(seed, "audio"), rate, _backend(backend))
    if silent:
        samples = np.zeros_like(samples)
    bg = Image.fromarray(make_background(size, rng)).convert("RGBA")
    actor = make_actor(inst, (0, 0) + tuple(size), n_frames, fps, rng, bg=bg)
    frames = render_frames(bg, [actor], n_frames, fps, rng)
    with atomic_path(path) as tmp:
        write_mp4(tmp, frames, size, fps, samples if audio else None, rate, n_frames)
    return path


def _solo_job(kwargs: dict[str, Any]) -> Path:
    return make_solo_video(**kwargs)


def _quiet_worker() -> None:
    # The parent already logged which fallbacks are in use; workers would repeat it.
    logging.getLogger("avsep.synth").setLevel(logging.ERROR)


def make_solo_collection(out_dir: str | os.PathLike, labels: Sequence[str] | None = None,
                         videos_per_label: int = 6, seconds: float = 8.0, seed: int = 0,
                         size: tuple[int, int] = (256, 256), workers: int = 1, progress: bool = True, *,
                         fps: int = DEFAULT_FPS, rate: int = DEFAULT_RATE, backend: str = "auto") -> list[Path]:
    """Write ``videos_per_label`` solo videos per label as ``out_dir/<label>/<label>_NNNN.mp4``.

    ``labels=None`` uses ``DEFAULT_LABELS`` (five very distinct instruments). ``size`` is
    ``(width, height)``. ``backend`` picks the audio renderer: ``"fluidsynth"``, ``"numpy"``
    or ``"auto"``. Existing files are kept. Returns all video paths, label by label.
    """
    out_dir = Path(out_dir)
    labels = list(labels or DEFAULT_LABELS)
    backend = _backend(backend)
    for label in labels:
        instrument_sprite(get_instrument(label))  # logs here, once, if a shape replaces the emoji
    jobs = [dict(path=out_dir / label / f"{label}_{i:04d}.mp4", label=label, seconds=seconds,
                 seed=derive_seed(seed, label, i), size=tuple(size), fps=fps, rate=rate, backend=backend)
            for label in labels for i in range(videos_per_label)]
    todo = [j for j in jobs if not j["path"].exists()]
    bar = tqdm(total=len(todo), desc="solo videos", unit="video", disable=not progress or not todo)
    if workers > 1 and len(todo) > 1:
        # spawn, not fork: the caller may hold torch/OpenMP threads that do not survive a fork.
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(todo)), mp_context=ctx, initializer=_quiet_worker) as pool:
            for _ in pool.map(_solo_job, todo):
                bar.update()
    else:
        for job in todo:
            _solo_job(job)
            bar.update()
    bar.close()
    return [j["path"] for j in jobs]


def _default_pairs(count: int, rng: np.random.Generator) -> list[tuple[str, str]]:
    """``count`` pairs of distinct default labels, cycling through all pairs in random order."""
    pairs = list(combinations(DEFAULT_LABELS, 2))
    order = rng.permutation(len(pairs))
    return [pairs[order[i % len(pairs)]] for i in range(count)]


def make_duet(out_dir: str | os.PathLike, name: str, labels: tuple[str, str], seconds: float = 8.0,
              seed: int = 0, size: tuple[int, int] = (512, 256), fps: int = DEFAULT_FPS,
              rate: int = DEFAULT_RATE, backend: str = "auto") -> dict[str, Any]:
    """Write one duet (``name.mp4``, stems ``name/<label>.wav``, ``name.json``); returns its
    manifest entry with paths relative to ``out_dir``. Skipped when ``name.json`` exists (it is
    written last)."""
    out_dir = Path(out_dir)
    meta_path = out_dir / f"{name}.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text(encoding="utf-8"))
    if len(set(labels)) != 2:
        raise ValueError(f"a duet needs two different labels, got {labels}")
    rng = np.random.default_rng(derive_seed(seed, "video"))
    backend = _backend(backend)
    stems = [render_clip(get_instrument(lab), seconds, derive_seed(seed, "audio", lab), rate, backend)
             for lab in labels]
    peak = float(np.abs(stems[0] + stems[1]).max())
    if peak > 0.99:  # scale the stems, not just the mixture, so mixture == sum of stems holds
        stems = [s * (0.99 / peak) for s in stems]
    mix = stems[0] + stems[1]
    w, h = size
    n_frames = _n_frames(seconds, fps)
    bg = Image.fromarray(make_background(size, rng)).convert("RGBA")
    sides = [("left", (0, 0, w // 2, h)), ("right", (w // 2, 0, w, h))]
    if rng.random() < 0.5:
        sides.reverse()
    actors = [make_actor(get_instrument(lab), region, n_frames, fps, rng, bg=bg)
              for lab, (_, region) in zip(labels, sides)]
    sources = []
    for lab, stem, actor, (side, _) in zip(labels, stems, actors, sides):
        stem_path = out_dir / name / f"{lab}.wav"
        with atomic_path(stem_path) as tmp:
            write_wav(tmp, stem, rate)
        x0, y0, x1, y1 = actor.box()
        box = [max(0, x0), max(0, y0), min(w, x1), min(h, y1)]
        sources.append({"label": lab, "stem": stem_path.relative_to(out_dir).as_posix(), "box": box, "side": side})
    video = out_dir / f"{name}.mp4"
    with atomic_path(video) as tmp:
        write_mp4(tmp, render_frames(bg, actors, n_frames, fps, rng), size, fps, mix, rate, n_frames)
    entry = {"name": name, "video": video.name, "seconds": seconds, "fps": fps, "width": w, "height": h,
             "audio_rate": rate, "sources": sources}
    atomic_write_text(meta_path, json.dumps(entry, indent=2))
    return entry


def make_duets(out_dir: str | os.PathLike, pairs: Sequence[tuple[str, str]] | None = None, count: int = 4,
               seconds: float = 8.0, seed: int = 100, size: tuple[int, int] = (512, 256), *,
               fps: int = DEFAULT_FPS, rate: int = DEFAULT_RATE, backend: str = "auto",
               progress: bool = False) -> list[dict[str, Any]]:
    """Write duets ``out_dir/duet_NNN.mp4`` with stems and boxes, plus ``out_dir/duets.json``.

    One duet per pair in ``pairs``; with ``pairs=None``, ``count`` duets of random distinct
    default labels. ``size`` is ``(width, height)``; the two instruments play in the left and
    right halves. Returns the manifest entries (see ``load_duets`` for absolute paths).
    """
    out_dir = Path(out_dir)
    pairs = list(pairs) if pairs is not None else _default_pairs(count, np.random.default_rng(seed))
    entries = [make_duet(out_dir, f"duet_{i:03d}", tuple(p), seconds, derive_seed(seed, "duet", i), tuple(size),
                         fps, rate, backend)
               for i, p in enumerate(tqdm(pairs, desc="duets", unit="duet", disable=not progress))]
    atomic_write_text(out_dir / "duets.json", json.dumps({"duets": entries}, indent=2))
    return entries


def load_duets(out_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Read ``out_dir/duets.json`` with its ``video`` and ``stem`` paths made absolute."""
    out_dir = Path(out_dir).resolve()
    entries = json.loads((out_dir / "duets.json").read_text(encoding="utf-8"))["duets"]
    for e in entries:
        e["video"] = str(out_dir / e["video"])
        for s in e["sources"]:
            s["stem"] = str(out_dir / s["stem"])
    return entries


def make_bad_files(out_dir: str | os.PathLike, seed: int = 0, label: str = "violin") -> dict[str, Path]:
    """Write broken inputs into ``out_dir/<label>/`` for preprocessing tests.

    Keys: ``corrupt`` (random bytes named .mp4), ``no_audio`` (video stream only), ``silent``
    (all-zero audio), ``short`` (a valid 2 s clip). Existing files are kept.
    """
    folder = Path(out_dir) / label
    paths = {kind: folder / f"bad_{kind}.mp4" for kind in BAD_KINDS}
    if not paths["corrupt"].exists():
        junk = np.random.default_rng(derive_seed(seed, "corrupt")).integers(0, 256, 64 * 1024, dtype=np.uint8)
        with atomic_path(paths["corrupt"]) as tmp:
            tmp.write_bytes(junk.tobytes())
    common = dict(label=label, size=(256, 256))
    make_solo_video(paths["no_audio"], seconds=8.0, seed=derive_seed(seed, "no_audio"), audio=False, **common)
    make_solo_video(paths["silent"], seconds=8.0, seed=derive_seed(seed, "silent"), silent=True, **common)
    make_solo_video(paths["short"], seconds=2.0, seed=derive_seed(seed, "short"), **common)
    return paths
