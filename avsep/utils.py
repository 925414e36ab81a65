"""Small helpers shared by every stage: atomic writes, JSONL ledgers, logging."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger("avsep")
# mkstemp creates files readable by their owner only; finished files get the usual umask mode.
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; rename it onto ``dest`` only on success.

    Readers therefore see either the old file or the complete new one, never a partial one,
    even if the process is killed with SIGKILL half way through writing.
    ``suffix`` defaults to the destination's, so libraries that pick a format from the
    extension (PIL, PyAV) still do the right thing.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=(dest.suffix if suffix is None else suffix) + ".part",
                               dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, dest)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def check_output_folder(folder: str | os.PathLike, what: str = "--out") -> None:
    """Fail early, in one line, when ``folder`` cannot become an output folder: it is a file, or
    its nearest existing parent is not writable. Nothing is created (a rejected command writes nothing)."""
    from avsep.errors import AvsepError

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise AvsepError(f"{what} {folder}: exists and is not a folder")
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise AvsepError(f"{what} {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise AvsepError(f"{what} {folder}: {existing} is not writable")


def atomic_write_text(dest: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def clean_partials(folder: str | os.PathLike) -> int:
    """Remove ``*.part`` leftovers of writes killed mid-way; returns how many were removed."""
    removed = 0
    for part in Path(folder).rglob(".*.part"):
        with contextlib.suppress(OSError):
            part.unlink()
            removed += 1
    return removed


class Ledger:
    """An append-only JSONL file with one record per finished item.

    Each record is flushed and fsynced as soon as it is written, so a crash loses at most the
    line being written; a torn last line is ignored on reading.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def read(self) -> list[dict[str, Any]]:
        """All complete records, oldest first."""
        if not self.path.exists():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                record = json.loads(line)
                if isinstance(record, dict):
                    records.append(record)
        return records

    def latest(self, key: str = "id") -> dict[str, dict[str, Any]]:
        """The last record for each value of ``key``."""
        return {str(r[key]): r for r in self.read() if key in r}

    def append(self, **record: Any) -> None:
        record.setdefault("time", time.strftime("%Y-%m-%dT%H:%M:%S"))
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with open(self.path, "a+b") as f:
            # A kill during the previous write can leave a torn last line: start a fresh one.
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())


def setup_logging(verbose: bool = False) -> None:
    """Plain ``avsep: message`` logging on stderr."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="avsep: %(message)s")


def pick_device(name: str = "auto"):
    """A torch device from ``--device``: ``auto`` means CUDA when available, else the CPU."""
    import torch

    from avsep.errors import AvsepError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AvsepError(f"--device {name}: CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError:
        raise AvsepError(f"--device {name!r}: not a device (try cpu, cuda or cuda:1)") from None
