"""Read the dataset index files into a flat list of :class:`Item`, and select from it.

Three formats are understood:

* ``music``: the MUSIC JSON files, ``{"version": 1.0, "videos": {label: [youtube_id, ...]}}``;
* ``vggsound``: the VGGSound CSV, ``youtube_id,start_seconds,label,split`` without a header;
* ``urls``: a CSV of ``url,label[,start_seconds,duration_seconds]`` for one's own collections.

Every item knows its output path (``<folder>/<name>.mp4``) and its full URL, so the rest of the
downloader never sees a bare YouTube id (ids may begin with ``-``, which a command line reads as
an option).
"""
from __future__ import annotations

import csv
import difflib
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence
from urllib.parse import parse_qs, urlparse

from ..errors import AvsepError

DATASETS = ("music", "vggsound", "urls")
YOUTUBE_URL = "https://www.youtube.com/watch?v={id}"
VGGSOUND_CLIP_SECONDS = 10.0


@dataclass(frozen=True)
class Item:
    """One video (or clip) to fetch."""

    name: str                        # file name without .mp4: the YouTube id, or "<id>_<start:06d>"
    label: str                       # the label as written in the index
    url: str                         # full URL given to yt-dlp
    start: Optional[float] = None    # clip start in seconds (None: the whole video)
    duration: Optional[float] = None  # clip length in seconds (None: to the end)
    split: Optional[str] = None      # VGGSound's train/test

    @property
    def folder(self) -> str:
        return safe_label(self.label)

    @property
    def key(self) -> str:
        """Unique within an output folder: the relative path without extension."""
        return f"{self.folder}/{self.name}"

    @property
    def relpath(self) -> str:
        return f"{self.key}.mp4"


def safe_label(label: str) -> str:
    """A readable, portable folder name for a label.

    Commas become `` - `` ("playing violin, fiddle" -> "playing violin - fiddle") because the
    index files written by ``avsep preprocess`` are CSV; path separators and characters that
    Windows forbids become ``-``; leading dots are dropped so the folder is never hidden. Spaces
    stay, so the MUSIC duet label "flute violin" stays readable and distinct from "acoustic_guitar".
    """
    text = unicodedata.normalize("NFC", label)
    text = re.sub(r"\s*,\s*", " - ", text.strip())
    text = re.sub(r'[/\\:*?"<>|\x00-\x1f\x7f]+', "-", text)
    text = re.sub(r"\s+", " ", text).strip(" .")
    return text[:120].rstrip(" .") or "unlabelled"


# --- parsers --------------------------------------------------------------------------------------

def load_index(dataset: str, path: str | Path, url_template: str = YOUTUBE_URL,
               clip_seconds: float = VGGSOUND_CLIP_SECONDS) -> list[Item]:
    """Parse an index file of the given dataset; raises :class:`AvsepError` on any problem."""
    path = Path(path)
    if dataset not in DATASETS:
        raise AvsepError(f"unknown dataset {dataset!r}: choose one of {', '.join(DATASETS)}")
    _check_template(url_template)
    if not path.is_file():
        raise AvsepError(f"index file {path} does not exist")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise AvsepError(f"cannot read index file {path}: {err}") from None
    if dataset == "music":
        items = parse_music(text, path, url_template)
    elif dataset == "vggsound":
        items = parse_vggsound(text, path, url_template, clip_seconds)
    else:
        items = parse_urls(text, path)
    if not items:
        raise AvsepError(f"index file {path} lists no videos")
    return _dedupe(items)


def _check_template(url_template: str) -> None:
    try:
        ok = "{id}" in url_template and url_template.format(id="x") != url_template
    except (KeyError, IndexError, ValueError):
        ok = False
    if not ok:
        raise AvsepError(f"--url-template {url_template!r} must contain {{id}} and no other {{...}} field")


def parse_music(text: str, path: Path, url_template: str = YOUTUBE_URL) -> list[Item]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise AvsepError(f"{path} is not a MUSIC JSON file: {err}") from None
    videos = data.get("videos") if isinstance(data, dict) else None
    if not isinstance(videos, dict):
        raise AvsepError(f'{path} is not a MUSIC JSON file: expected {{"videos": {{label: [youtube_id, ...]}}}}')
    items = []
    for label, ids in videos.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) and _YOUTUBE_ID.fullmatch(i) for i in ids):
            raise AvsepError(f"{path}: label {label!r} must map to a list of YouTube ids")
        items += [Item(name=i, label=label, url=url_template.format(id=i)) for i in ids]
    return items


def parse_vggsound(text: str, path: Path, url_template: str = YOUTUBE_URL,
                   clip_seconds: float = VGGSOUND_CLIP_SECONDS) -> list[Item]:
    items = []
    for line_no, row in _csv_rows(text):
        if len(row) != 4:
            raise AvsepError(f"{path}:{line_no}: expected 4 columns youtube_id,start_seconds,label,split, "
                             f"got {len(row)}")
        vid, start, label, split = (field.strip() for field in row)
        if not _YOUTUBE_ID.fullmatch(vid):
            raise AvsepError(f"{path}:{line_no}: {vid!r} is not a YouTube id")
        seconds = _seconds(start, path, line_no)
        items.append(Item(name=f"{vid}_{int(seconds):06d}", label=label, url=url_template.format(id=vid),
                          start=seconds, duration=clip_seconds, split=split))
    return items


def parse_urls(text: str, path: Path) -> list[Item]:
    rows = []
    for line_no, row in _csv_rows(text):
        if line_no == 1 and row and row[0].strip().lower() == "url":
            continue  # an optional header
        if not 2 <= len(row) <= 4:
            raise AvsepError(f"{path}:{line_no}: expected url,label[,start_seconds,duration_seconds], "
                             f"got {len(row)} columns")
        url, label = row[0].strip(), row[1].strip()
        if not re.match(r"^[a-z][a-z0-9+.-]*://", url, re.I):
            raise AvsepError(f"{path}:{line_no}: {url!r} is not a full URL (http://... or https://...)")
        start = _seconds(row[2], path, line_no) if len(row) > 2 and row[2].strip() else None
        duration = _seconds(row[3], path, line_no) if len(row) > 3 and row[3].strip() else None
        rows.append((url, label, start, duration))
    stems = [_url_stem(url) for url, *_ in rows]
    items = []
    for (url, label, start, duration), stem in zip(rows, stems):
        if stems.count(stem) > 1 and not _youtube_id(url):
            stem = f"{stem}-{hashlib.sha1(url.encode()).hexdigest()[:8]}"  # different URLs, same file name
        name = stem if start is None else f"{stem}_{int(start):06d}"
        items.append(Item(name=name, label=label, url=url, start=start, duration=duration))
    return items


_YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _csv_rows(text: str) -> Iterable[tuple[int, list[str]]]:
    """Non-empty CSV rows with 1-based line numbers; lines starting with # are comments."""
    for line_no, row in enumerate(csv.reader(text.splitlines()), start=1):
        if row and any(f.strip() for f in row) and not row[0].lstrip().startswith("#"):
            yield line_no, row


def _seconds(value: str, path: Path, line_no: int) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise AvsepError(f"{path}:{line_no}: {value.strip()!r} is not a number of seconds") from None
    if not seconds >= 0:
        raise AvsepError(f"{path}:{line_no}: seconds must be >= 0, got {value.strip()}")
    return seconds


def _youtube_id(url: str) -> Optional[str]:
    parsed = urlparse(url)
    host = parsed.netloc.lower()
    if host.endswith("youtu.be"):
        candidate = parsed.path.strip("/").split("/")[0]
    elif "youtube" in host:
        candidate = (parse_qs(parsed.query).get("v") or [""])[0]
        match = re.match(r"/(?:shorts|embed|live|v)/([^/?#]+)", parsed.path)
        candidate = candidate or (match.group(1) if match else "")
    else:
        return None
    return candidate if _YOUTUBE_ID.fullmatch(candidate or "") else None


def _url_stem(url: str) -> str:
    """A file name for a URL: the YouTube id, else the last path component without extension."""
    vid = _youtube_id(url)
    if vid:
        return vid
    last = urlparse(url).path.rstrip("/").rsplit("/", 1)[-1]
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", last.rsplit(".", 1)[0] if "." in last else last).strip("._")
    return stem or hashlib.sha1(url.encode()).hexdigest()[:12]


def _dedupe(items: list[Item]) -> list[Item]:
    """Drop repeats of an output path (an id listed twice under one label), keeping the first."""
    seen, unique = set(), []
    for item in items:
        if item.key not in seen:
            seen.add(item.key)
            unique.append(item)
    return unique


# --- selection ------------------------------------------------------------------------------------

def select(items: Sequence[Item], classes: Optional[Sequence[str]] = None, split: Optional[str] = None) -> list[Item]:
    """Keep the given classes (by label or folder name) and VGGSound split."""
    chosen = list(items)
    if classes:
        known = {i.label for i in chosen} | {i.folder for i in chosen}
        for name in classes:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=3)
                hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
                raise AvsepError(f"--classes: no label {name!r} in the index{hint}")
        wanted = set(classes)
        chosen = [i for i in chosen if i.label in wanted or i.folder in wanted]
    if split:
        chosen = [i for i in chosen if i.split == split]
    return chosen


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` with 1 <= I <= N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match:
        raise AvsepError(f"--shard {text!r}: expected I/N, e.g. 1/4 (shard I of N, counting from 1)")
    index, count = int(match.group(1)), int(match.group(2))
    if count < 1 or not 1 <= index <= count:
        raise AvsepError(f"--shard {text!r}: I must be between 1 and N (and N >= 1)")
    return index, count


def shard(items: Sequence[Item], index: int, count: int) -> list[Item]:
    """Shard ``index`` of ``count`` (1-based): items whose stable hash falls in it.

    The hash is of the file name only, so an item lands in the same shard on every machine,
    whatever the order of the index file or the filters used.
    """
    if count == 1:
        return list(items)
    return [i for i in items if int(hashlib.sha1(i.name.encode()).hexdigest(), 16) % count == index - 1]


def limit(items: Sequence[Item], count: Optional[int]) -> list[Item]:
    """The first ``count`` items taken round-robin over labels, so a small trial covers every class."""
    if count is None or count >= len(items):
        return list(items)
    queues: dict[str, list[Item]] = {}
    for item in items:
        queues.setdefault(item.label, []).append(item)
    picked: list[Item] = []
    depth = 0
    while len(picked) < count:
        picked += [q[depth] for q in queues.values() if depth < len(q)][:count - len(picked)]
        depth += 1
    return picked
