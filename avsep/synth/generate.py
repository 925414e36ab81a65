"""Generate synthetic solo videos and deliberately bad files (ensembles: ``ensembles.py``).

Everything is deterministic given the seed (each file draws from its own seed derived from the
collection seed, the pool and the file's identity, so adding labels or videos never changes the
others), written atomically, and skipped when it already exists, so generation can be resumed.
Each solo video ``<label>_NNNN.mp4`` has a ``<label>_NNNN.json`` beside it with its pool,
soundfont, loudness, rests and the instrument's box per frame.

CLI::

    avsep generate solo OUT [--pool train|test] [--labels violin trumpet] [--per-label 6] [--seconds 8]
    avsep generate duets OUT [--pool test] [--players 2] [--labels ...] [--pairs violin+trumpet] [--count 4]
    avsep generate sheet OUT.png
    avsep generate bad OUT [--seed 0]
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from avsep.utils import atomic_path, atomic_write_text

from avsep.synth.audio import DEFAULT_RATE, render_stems
from avsep.synth.ensembles import load_duets, make_duet, make_duets, make_ensemble
from avsep.synth.instruments import DEFAULT_LABELS, get_instrument
from avsep.synth.jobs import check_size, prepare, run_jobs
from avsep.synth.scenes import build_scene, union_box
from avsep.synth.seeds import check_pool, derive_seed
from avsep.data.encode import write_mp4
from avsep.synth.videos import DEFAULT_FPS, SYNTH_CRF

__all__ = ["BAD_KINDS", "derive_seed", "load_duets", "make_bad_files", "make_duet", "make_duets", "make_ensemble",
           "make_solo_collection", "make_solo_video"]
BAD_KINDS = ("corrupt", "no_audio", "silent", "short")


def n_frames(seconds: float, fps: int) -> int:
    return max(1, round(seconds * fps))


def soundfont_name(source: str) -> str:
    """What rendered the audio, for metadata: the soundfont's file name, or ``"numpy"``."""
    return os.path.basename(source)


def make_solo_video(path: str | os.PathLike, label: str, seconds: float = 8.0, seed: int = 0,
                    size: tuple[int, int] = (256, 256), fps: int = DEFAULT_FPS, rate: int = DEFAULT_RATE,
                    backend: str = "auto", silent: bool = False, audio: bool = True, *, pool: str = "train") -> Path:
    """Write one solo video of ``label`` from ``pool`` to ``path`` and its metadata beside it
    (``path`` with ``.json``); skipped if ``path`` exists; returns ``path``.

    ``silent`` writes an all-zero audio track and ``audio=False`` no audio stream at all
    (both only for the bad-file tests).
    """
    path = Path(path)
    if path.exists():
        return path
    get_instrument(label)
    size, pool = check_size(size), check_pool(pool)
    frames = n_frames(seconds, fps)
    stems = render_stems([label], seconds, derive_seed(seed, "audio"), rate, backend, pool)
    samples = np.zeros_like(stems.audio[0]) if silent else stems.audio[0]
    scene = build_scene([label], size, frames, fps, np.random.default_rng(derive_seed(seed, "video", pool)), pool)
    boxes = scene.boxes()[0]
    info = {"label": label, "pool": pool, "soundfont": soundfont_name(stems.soundfont)}
    meta = {**info, "video": path.name, "seconds": seconds, "fps": fps, "width": size[0], "height": size[1],
            "audio_rate": rate, "loudness_db": None if silent else round(stems.loudness_db[0], 2),
            "rests": [[round(a, 3), round(b, 3)] for a, b in stems.rests[0]], "box": union_box(boxes), "boxes": boxes}
    # The metadata first, the video last: an existing video means both are complete.
    atomic_write_text(path.with_suffix(".json"), json.dumps(meta))
    with atomic_path(path) as tmp:
        write_mp4(tmp, scene.frames(), size, fps, samples if audio else None, rate, frames, comment=json.dumps(info),
                  crf=SYNTH_CRF)
    return path


def make_solo_collection(out_dir: str | os.PathLike, labels: Sequence[str] | None = None,
                         videos_per_label: int = 6, seconds: float = 8.0, seed: int = 0,
                         size: tuple[int, int] = (256, 256), workers: int = 1, progress: bool = True, *,
                         fps: int = DEFAULT_FPS, rate: int = DEFAULT_RATE, backend: str = "auto",
                         pool: str = "train") -> list[Path]:
    """Write ``videos_per_label`` solo videos per label as ``out_dir/<label>/<label>_NNNN.mp4``
    (``<label>_heldout_NNNN.mp4`` for the test pool: other videos, so other identities).

    ``labels=None`` uses ``DEFAULT_LABELS`` (five very distinct instruments). ``size`` is
    ``(width, height)``. ``pool`` is ``"train"`` or ``"test"`` (held-out backgrounds,
    soundfont and melodies). ``backend`` picks the audio renderer: ``"fluidsynth"``,
    ``"numpy"`` or ``"auto"``. Existing files are kept. Returns all video paths, label by label.
    """
    out_dir = Path(out_dir)
    labels = list(labels or DEFAULT_LABELS)
    size = check_size(size)
    backend = prepare(labels, pool, backend)
    # A video's identity (splits, training manifests) is its label and name: the held-out
    # pool's videos are other videos and must not share the training pool's names.
    infix = "" if check_pool(pool) == "train" else "heldout_"
    jobs = [dict(path=out_dir / label / f"{label}_{infix}{i:04d}.mp4", label=label, seconds=seconds,
                 seed=derive_seed(seed, pool, label, i), size=size, fps=fps, rate=rate, backend=backend, pool=pool)
            for label in labels for i in range(videos_per_label)]
    todo = [j for j in jobs if not j["path"].exists()]
    run_jobs(make_solo_video, todo, workers, "solo videos", progress)
    return [j["path"] for j in jobs]


def load_solo_meta(video: str | os.PathLike) -> dict[str, Any]:
    """The metadata written beside a solo video (``.json`` next to the ``.mp4``)."""
    return json.loads(Path(video).with_suffix(".json").read_text(encoding="utf-8"))


def make_bad_files(out_dir: str | os.PathLike, seed: int = 0, label: str = "violin") -> dict[str, Path]:
    """Write broken inputs into ``out_dir/<label>/`` for preprocessing tests.

    Keys: ``corrupt`` (random bytes named .mp4), ``no_audio`` (video stream only), ``silent``
    (all-zero audio), ``short`` (a valid 2 s clip). Existing files are kept.
    """
    get_instrument(label)
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
