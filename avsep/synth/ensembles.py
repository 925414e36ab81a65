"""Ensembles: 2-4 players in one scene, with ground truth for separating them.

Each scene ``NAME`` (``duet_000``, ``trio_001``, ``quartet_002``...) is written as
``NAME.mp4`` (the mixture's audio with the video), ``NAME/<label>.wav`` per source,
``NAME/mixture.wav`` (exactly the sum of the stem WAVs, sample for sample) and ``NAME.json``
last: per source its label, stem, ``box`` (union over frames) and ``boxes`` (one per video
frame), all ``[x0, y0, x1, y1]`` pixels with x1/y1 exclusive; plus frame size, fps, pool and
soundfont. ``duets.json`` lists every scene of the folder.
"""
from __future__ import annotations

import json
import os
from itertools import combinations
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from avsep.errors import AvsepError
from avsep.utils import atomic_path, atomic_write_text

from avsep.synth.audio import DEFAULT_RATE, render_stems
from avsep.synth.instruments import DEFAULT_LABELS, get_instrument
from avsep.synth.jobs import check_size, prepare, run_jobs
from avsep.synth.loudness import active_rms_db
from avsep.synth.scenes import build_scene, union_box
from avsep.synth.seeds import check_pool, derive_seed
from avsep.data.decode import write_wav
from avsep.data.encode import write_mp4
from avsep.synth.videos import DEFAULT_FPS, SYNTH_CRF

GROUP_NAMES = {2: "duet", 3: "trio", 4: "quartet"}
DEFAULT_ENSEMBLE_SIZE = (512, 256)
FULL_SCALE = 32767
HEADROOM = 0.99  # the mixture's peak at most this fraction of full scale


def check_group(labels: Sequence[str]) -> tuple[str, ...]:
    """The labels as a tuple; raises ``ValueError`` unless 2-4 different known labels."""
    labels = tuple(labels)
    for label in labels:
        get_instrument(label)
    if not 2 <= len(labels) <= 4 or len(set(labels)) != len(labels):
        raise ValueError(f"an ensemble needs 2 to 4 different labels, got {'+'.join(labels)}")
    return labels


def _mix(stems: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Stems as int16 ``[n]`` each and their sum (int16), scaled together so the sum does not
    clip: the stems are scaled, not just the mixture, so mixture == sum of stems holds."""
    peak = float(np.abs(np.sum(stems, axis=0)).max()) * FULL_SCALE
    gain = min(1.0, HEADROOM * FULL_SCALE / peak) if peak > 0 else 1.0
    pcm = [np.round(np.clip(s * gain, -1, 1) * FULL_SCALE).astype(np.int32) for s in stems]
    mix = np.sum(pcm, axis=0)
    return [p.astype(np.int16) for p in pcm], np.clip(mix, -FULL_SCALE, FULL_SCALE).astype(np.int16)


def _write_wav(path: Path, pcm: np.ndarray, rate: int) -> str:
    # int16 / 32768 is exact in float32, and write_wav scales back by 32768: the samples are kept.
    write_wav(path, pcm.astype(np.float32) / 32768.0, rate)
    return path.as_posix()


def make_ensemble(out_dir: str | os.PathLike, name: str, labels: Sequence[str], seconds: float = 8.0,
                  seed: int = 0, size: tuple[int, int] = DEFAULT_ENSEMBLE_SIZE, fps: int = DEFAULT_FPS,
                  rate: int = DEFAULT_RATE, backend: str = "auto", *, pool: str = "train") -> dict[str, Any]:
    """Write one scene of ``len(labels)`` players (see the module docstring); returns its
    manifest entry, paths relative to ``out_dir``. Skipped when ``name.json`` exists (it is
    written last)."""
    out_dir = Path(out_dir)
    meta_path = out_dir / f"{name}.json"
    if meta_path.exists():
        return json.loads(meta_path.read_text(encoding="utf-8"))
    labels, size, pool = check_group(labels), check_size(size), check_pool(pool)
    frames = max(1, round(seconds * fps))
    stems = render_stems(labels, seconds, derive_seed(seed, "audio"), rate, backend, pool)
    pcm, mix = _mix(stems.audio)
    scene = build_scene(labels, size, frames, fps, np.random.default_rng(derive_seed(seed, "video", pool)), pool)
    sources = []
    for label, stem, boxes, rests in zip(labels, pcm, scene.boxes(), stems.rests):
        path = _write_wav(out_dir / name / f"{label}.wav", stem, rate)
        level = active_rms_db(stem / FULL_SCALE, rate)
        sources.append({"label": label, "stem": Path(path).relative_to(out_dir).as_posix(),
                        "box": union_box(boxes), "boxes": boxes, "loudness_db": round(level, 2),
                        "rests": [[round(a, 3), round(b, 3)] for a, b in rests]})
    mixture = _write_wav(out_dir / name / "mixture.wav", mix, rate)
    video = out_dir / f"{name}.mp4"
    soundfont = os.path.basename(stems.soundfont)
    with atomic_path(video) as tmp:
        write_mp4(tmp, scene.frames(), size, fps, mix.astype(np.float32) / FULL_SCALE, rate, frames,
                  comment=json.dumps({"labels": list(labels), "pool": pool, "soundfont": soundfont}), crf=SYNTH_CRF)
    entry = {"name": name, "video": video.name, "mixture": Path(mixture).relative_to(out_dir).as_posix(),
             "seconds": seconds, "fps": fps, "width": size[0], "height": size[1], "audio_rate": rate,
             "pool": pool, "soundfont": soundfont, "players": len(labels), "sources": sources}
    atomic_write_text(meta_path, json.dumps(entry, indent=1))
    return entry


def make_duet(out_dir: str | os.PathLike, name: str, labels: tuple[str, str], seconds: float = 8.0,
              seed: int = 0, size: tuple[int, int] = DEFAULT_ENSEMBLE_SIZE, fps: int = DEFAULT_FPS,
              rate: int = DEFAULT_RATE, backend: str = "auto", *, pool: str = "train") -> dict[str, Any]:
    """``make_ensemble`` of two players (kept for existing callers)."""
    return make_ensemble(out_dir, name, labels, seconds, seed, size, fps, rate, backend, pool=pool)


def default_groups(count: int, players: int, rng: np.random.Generator,
                   labels: Sequence[str] | None = None) -> list[tuple[str, ...]]:
    """``count`` groups of ``players`` distinct labels (``labels``, else ``DEFAULT_LABELS``),
    cycling through all such groups in random order."""
    labels = list(labels or DEFAULT_LABELS)
    if not 2 <= players <= min(4, len(labels)):
        raise ValueError(f"players must be 2, 3 or 4 and at most the number of labels ({len(labels)}), got {players}")
    groups = list(combinations(labels, players))
    order = rng.permutation(len(groups))
    return [groups[order[i % len(groups)]] for i in range(count)]


def make_duets(out_dir: str | os.PathLike, pairs: Sequence[Sequence[str]] | None = None, count: int = 4,
               seconds: float = 8.0, seed: int = 100, size: tuple[int, int] = DEFAULT_ENSEMBLE_SIZE, *,
               fps: int = DEFAULT_FPS, rate: int = DEFAULT_RATE, backend: str = "auto", progress: bool = False,
               pool: str = "train", players: int = 2, workers: int = 1,
               labels: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Write ensemble scenes into ``out_dir`` plus the manifest ``out_dir/duets.json``.

    One scene per label group in ``pairs`` (groups of 2-4 labels); with ``pairs=None``,
    ``count`` scenes of ``players`` (2-4) random distinct labels drawn from ``labels``
    (default: ``DEFAULT_LABELS``). ``size`` is ``(width, height)``; ``pool`` is ``"train"``
    or ``"test"``. Returns the manifest entries (see ``load_duets`` for absolute paths).
    """
    out_dir = Path(out_dir)
    check_pool(pool)
    if pairs is None:
        pairs = default_groups(count, players, np.random.default_rng(derive_seed(seed, pool, "groups")), labels)
    groups = [check_group(g) for g in pairs]
    backend = prepare(sorted({lab for g in groups for lab in g}), pool, backend)
    jobs = [dict(out_dir=out_dir, name=f"{GROUP_NAMES[len(g)]}_{i:03d}", labels=g, seconds=seconds,
                 seed=derive_seed(seed, pool, "ensemble", i), size=check_size(size), fps=fps, rate=rate,
                 backend=backend, pool=pool) for i, g in enumerate(groups)]
    entries = run_jobs(make_ensemble, jobs, workers, "ensembles", progress)
    atomic_write_text(out_dir / "duets.json", json.dumps({"duets": entries}, indent=1))
    return entries


def load_duets(out_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Read ``out_dir/duets.json`` with its ``video``, ``mixture`` and ``stem`` paths made absolute."""
    out_dir = Path(out_dir).resolve()
    index = out_dir / "duets.json"
    try:
        entries = json.loads(index.read_text(encoding="utf-8"))["duets"]
        for e in entries:
            e["video"] = str(out_dir / e["video"])
            if "mixture" in e:
                e["mixture"] = str(out_dir / e["mixture"])
            for s in e["sources"]:
                s["stem"] = str(out_dir / s["stem"])
    except FileNotFoundError:
        raise AvsepError(f"{out_dir}: no duets.json (make one with `avsep generate duets`)") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise AvsepError(f"{index}: not a duets.json of `avsep generate duets` "
                         f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from None
    return entries
