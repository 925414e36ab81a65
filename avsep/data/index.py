"""Index files: which audio file and frame folder make up each video of a split.

An index is a CSV file with one video per row::

    AUDIO_PATH,FRAMES_DIR,NUM_FRAMES,LABEL

Without the LABEL column it is the index format of the original Sound of Pixels code, where
the label is the name of the folder holding the audio file
(``.../audio/acoustic_guitar/xyz.mp3`` -> ``acoustic_guitar``); both are accepted.
Frames are ``FRAMES_DIR/000001.jpg``, ``000002.jpg``, ... (1-based, six digits, as in the
original). Relative paths are resolved against the index file's folder, or against the
current folder when they do not exist there (the original index files hold paths relative
to where its scripts were run).
"""
from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional

from avsep.errors import AvsepError
from avsep.utils import atomic_write_text


@dataclass(frozen=True)
class IndexRow:
    """One video: its audio file, its frame folder, how many frames it has, and its label."""
    audio: Path
    frames: Path
    num_frames: int
    label: str


def frame_path(row: IndexRow, i: int) -> Path:
    """The file of frame ``i`` (0-based) of ``row``: ``FRAMES_DIR/{i + 1:06d}.jpg``."""
    return row.frames / f"{i + 1:06d}.jpg"


def _resolve(audio: str, frames: str, base: Path) -> tuple:
    """Resolve a row's relative paths against ``base``, or the current folder as a fallback."""
    audio_path, frames_path = Path(audio), Path(frames)
    if not audio_path.is_absolute() and not (base / audio_path).exists() and audio_path.exists():
        base = Path(".")
    # normpath folds the ``..`` that write_index(relative_to=...) may have written.
    return Path(os.path.normpath(base / audio_path)), Path(os.path.normpath(base / frames_path))


def _is_header(fields: List[str]) -> bool:
    """A first line such as ``audio,frames,num_frames,label`` is a header, not a video."""
    return len(fields) >= 3 and not fields[2].strip().lstrip("-").isdigit() and "audio" in fields[0].lower()


def read_index(path: "str | os.PathLike[str]") -> List[IndexRow]:
    """Read an index file (4-column, or the original 3-column format) into rows.

    Raises :class:`AvsepError` naming the file (and line) if it is missing, empty, or has a
    malformed row.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AvsepError(f"{path}: index file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise AvsepError(f"{path}: cannot read index file: {err}") from None
    base = path.parent
    rows = []
    for lineno, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not fields or all(not f.strip() for f in fields):
            continue
        if lineno == 1 and _is_header(fields):
            continue
        rows.append(_parse_row(fields, path, lineno, base))
    if not rows:
        raise AvsepError(f"{path}: index file has no rows")
    return rows


def _parse_row(fields: List[str], path: Path, lineno: int, base: Path) -> IndexRow:
    where = f"{path}, line {lineno}"
    if len(fields) not in (3, 4):
        raise AvsepError(f"{where}: expected AUDIO_PATH,FRAMES_DIR,NUM_FRAMES[,LABEL], "
                         f"got {len(fields)} column(s)")
    audio, frames, count = (f.strip() for f in fields[:3])
    if not audio or not frames:
        raise AvsepError(f"{where}: empty audio path or frames folder")
    try:
        num_frames = int(count)
    except ValueError:
        raise AvsepError(f"{where}: NUM_FRAMES must be an integer, got {count!r}") from None
    if num_frames < 1:
        raise AvsepError(f"{where}: NUM_FRAMES must be at least 1, got {num_frames}")
    audio_path, frames_path = _resolve(audio, frames, base)
    # The original format's label is the folder holding the audio file.
    label = fields[3].strip() if len(fields) == 4 else Path(audio).parent.name
    if not label:
        raise AvsepError(f"{where}: empty label")
    return IndexRow(audio=audio_path, frames=frames_path, num_frames=num_frames, label=label)


def write_index(path: "str | os.PathLike[str]", rows: Iterable[IndexRow],
                relative_to: "Optional[str | os.PathLike[str]]" = None) -> None:
    """Write ``rows`` as a 4-column index file, atomically.

    With ``relative_to``, paths are written relative to that folder (pass the index file's
    own folder so that the data can be moved as a whole); otherwise as they are.
    """
    def rel(p: Path) -> str:
        return Path(os.path.relpath(p, relative_to)).as_posix() if relative_to is not None else Path(p).as_posix()

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([rel(row.audio), rel(row.frames), int(row.num_frames), row.label])
    atomic_write_text(path, buffer.getvalue())
