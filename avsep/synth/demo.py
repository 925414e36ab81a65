"""The demo data of the quickstart and the generalization benchmark, ready to train on.

In ``workdir``:

* ``videos/``: solo videos from the *train* pool, preprocessed into ``data/`` with train, val and
  test splits (the validation split is the in-distribution figure);
* ``heldout_videos/``: solo videos from the *test* pool (photographs, melodies and a soundfont
  never used in training), preprocessed into ``heldout/`` with every video in ``all.csv``;
* ``duets/``: duets of held-out scenes, with stems and per-frame boxes;
* ``heldout_backgrounds.txt``: what the held-out scenes show behind their players (``packages``:
  the held-out wallpaper packages, or the path of a folder of your own pictures).

Every step is skipped when its output exists, so a second run reuses the first one's data.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from avsep.config import Config
from avsep.data.preprocess import DEFAULT_MIN_SECONDS, format_summary, preprocess
from avsep.errors import AvsepError
from avsep.synth.backgrounds import FOLDER_ENV, check_folder, use_folder
from avsep.synth.instruments import DEFAULT_PER_LABEL
from avsep.utils import atomic_write_text


# WORKDIR/heldout_backgrounds.txt: "packages", or the folder of pictures behind the held-out scenes.
BACKGROUNDS_RECORD = "heldout_backgrounds.txt"
PACKAGES = "packages"
# One clip of the `small` preset, which the demo trains: the shortest training video it can use.
SMALL_CLIP_SECONDS = Config.preset("small").audio_len / Config.preset("small").sample_rate


@dataclass
class DemoData:
    data: Path              # train-pool preprocessed folder (train.csv, val.csv, test.csv)
    heldout_index: Path     # every held-out solo video
    duets: list             # held-out duet entries with absolute paths


def prepare_demo(workdir: str | Path, labels: Sequence[str] | None = None, per_label: int = DEFAULT_PER_LABEL,
                 heldout_per_label: int = 6, duets: int = 12, seconds: float = 8.0, seed: int = 0,
                 workers: int = 2, verbose: bool = True, train_seconds: float | None = None,
                 heldout_backgrounds: str | Path | None = None) -> DemoData:
    """Generate and preprocess the demo data (see the module docstring).

    ``seconds`` is the length of the held-out videos and duets; ``train_seconds`` (default: the
    same) that of the training-pool videos, which need only be one clip of the ``small`` preset
    long (1.5 s; 3 s before 2026-12-06): many short videos show the vision network more scenes for the same cost.
    ``heldout_backgrounds``: a folder of pictures (your own rooms, say) behind the players of the
    held-out videos and duets, instead of the held-out wallpaper packages. A workdir keeps the
    backgrounds its held-out scenes were made with, and refuses others.
    """
    from avsep.synth import load_duets, make_duets, make_solo_collection

    train_seconds = seconds if train_seconds is None else train_seconds

    work = Path(workdir)
    check_heldout_names(work / "heldout_videos")
    check_heldout_backgrounds(work, heldout_backgrounds)
    make_solo_collection(work / "videos", labels=labels, videos_per_label=per_label, seconds=train_seconds,
                         seed=seed, workers=workers, pool="train")
    atomic_write_text(work / BACKGROUNDS_RECORD, heldout_backgrounds_choice(heldout_backgrounds) + "\n")
    with use_folder("test", heldout_backgrounds):
        make_solo_collection(work / "heldout_videos", labels=labels, videos_per_label=heldout_per_label,
                             seconds=seconds, seed=seed + 1, workers=workers, pool="test")
        make_duets(work / "duets", pairs=None, count=duets, seconds=seconds, seed=seed + 2, pool="test",
                   labels=labels)
    summary = preprocess(work / "videos", work / "data", workers=workers, val_frac=0.15, test_frac=0.15,
                         seed=seed, progress=verbose, min_seconds=shortest_training_video(train_seconds))
    if verbose:
        print(format_summary(summary))
    held = preprocess(work / "heldout_videos", work / "heldout", workers=workers, val_frac=0.0, test_frac=0.0,
                      seed=seed, progress=verbose)
    if verbose:
        print(format_summary(held))
    # With no val or test fraction every video is in train.csv: name it for what it is.
    shutil.copyfile(work / "heldout" / "train.csv", work / "heldout" / "all.csv")
    return DemoData(work / "data", work / "heldout" / "all.csv", load_duets(work / "duets"))


def shortest_training_video(train_seconds: float) -> float | None:
    """Preprocessing's ``min_seconds`` for the training pool: its default (one ``sop`` clip) for
    videos that long, so that earlier workdirs are reused as they are, else one ``small`` clip."""
    return None if train_seconds >= DEFAULT_MIN_SECONDS else SMALL_CLIP_SECONDS


def heldout_backgrounds_choice(folder: str | Path | None) -> str:
    """What a workdir records of the held-out scenes' backgrounds: the folder's absolute path (the
    ``AVSEP_TEST_BACKGROUNDS`` folder when none is given and that is set), else ``"packages"``."""
    folder = folder if folder is not None else os.environ.get(FOLDER_ENV["test"]) or None
    return PACKAGES if folder is None else str(Path(folder).expanduser().resolve())


def recorded_heldout_backgrounds(work: Path) -> str | None:
    """The backgrounds a workdir's held-out scenes were made with; None when it has none (not made
    yet, or deleted to be made again)."""
    if not any((work / name).exists() for name in ("heldout_videos", "duets")):
        return None
    record = work / BACKGROUNDS_RECORD
    return record.read_text().strip() if record.is_file() else PACKAGES   # made before the record existed


def check_heldout_backgrounds(workdir: str | Path, folder: str | Path | None, option: str | None = None) -> None:
    """Raise AvsepError, before anything is made, for a folder without pictures (naming ``option``,
    the argument that gave ``folder``, when given), or for other backgrounds than those the
    workdir's held-out scenes were made with."""
    work = Path(workdir)
    made_with, asked = recorded_heldout_backgrounds(work), heldout_backgrounds_choice(folder)
    if folder is not None:
        check_folder(folder, option)
    elif asked != PACKAGES:   # the environment's folder
        check_folder(asked)
    if made_with is not None and made_with != asked:
        # Workdirs older than the record are taken to show the packages: say how to correct that.
        older = "" if (work / BACKGROUNDS_RECORD).is_file() else (
            f" (as far as avsep knows: if they were made with AVSEP_TEST_BACKGROUNDS, write that folder's path "
            f"into {work / BACKGROUNDS_RECORD})")
        raise AvsepError(f"{work}: its held-out scenes were made with {_described(made_with)}{older}, not "
                         f"{_described(asked)}: use a new workdir, or delete {work / 'heldout_videos'}, "
                         f"{work / 'heldout'} and {work / 'duets'} to make them again")


def _described(choice: str) -> str:
    """A recorded choice in words."""
    return "the held-out wallpaper packages" if choice == PACKAGES else choice


def check_heldout_names(folder: Path) -> None:
    """Refuse a workdir whose held-out videos were named as training videos are (by an older
    avsep): reusing it would index the old and the new held-out videos side by side."""
    old = [p for p in folder.glob("*/*.mp4") if "_heldout_" not in p.name]
    if old:
        raise AvsepError(f"{folder} holds held-out videos named as by an older avsep (for example {old[0].name}); "
                         f"delete {folder} and {folder.parent / 'heldout'} to make them again")
