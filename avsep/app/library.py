"""The videos the app may show: those of a folder, and uploads kept in the app's temporary folder.

The page names videos by id only, never by path: an id is looked up in this catalogue, so a
request cannot reach a file outside the app's folders. Uploads are saved under a fresh id with a
sanitised name, checked (a decodable video with a picture and sound, not too long) and removed
again when the check fails.
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
import shutil
import threading
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from avsep.app.media import check_video
from avsep.errors import AvsepError

log = logging.getLogger("avsep")
VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi", ".mpg", ".mpeg", ".ogv", ".flv", ".wmv", ".3gp"}
MAX_FOLDER_VIDEOS = 2000   # a listing the page can show; a huge tree is cut, not walked for minutes
CHUNK = 1 << 20


class UploadError(AvsepError):
    """An upload refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass
class VideoEntry:
    """One video: ``id`` is what the page uses, ``path`` is never sent to it."""
    id: str
    name: str
    path: Path
    origin: str                    # "folder" or "upload"
    info: dict | None = None       # from check_video, once checked

    def public(self) -> dict:
        return {"id": self.id, "name": self.name, "origin": self.origin}


def safe_name(name: str, default: str = "upload.mp4") -> str:
    """A file name that is safe to create anywhere: the last path component, ASCII letters,
    digits, ``.``, ``-`` and ``_`` only, no leading dot, at most 80 characters."""
    name = unicodedata.normalize("NFKD", name.replace("\\", "/").split("/")[-1])
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name.encode("ascii", "ignore").decode()).lstrip("._")
    if len(name) > 80:
        stem, dot, suffix = name.rpartition(".")
        name = (stem[:70] + dot + suffix[:9]) if dot and len(suffix) < 10 else name[:80]
    return name or default


class Library:
    """Folder videos (rescanned on each listing) and uploads (at most ``max_uploads``, oldest
    removed first)."""

    def __init__(self, folder: Path | None, workdir: Path, max_upload_bytes: int, max_seconds: float,
                 max_uploads: int = 20):
        self.folder = folder.resolve() if folder else None
        self.uploads_dir = workdir / "uploads"
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.max_upload_bytes, self.max_seconds, self.max_uploads = max_upload_bytes, max_seconds, max_uploads
        self._folder_entries: dict[str, VideoEntry] = {}
        self._uploads: OrderedDict[str, VideoEntry] = OrderedDict()
        self._lock = threading.Lock()

    # --- listing and lookup --------------------------------------------------------------------
    def scan(self) -> list[VideoEntry]:
        """The folder's videos (recursively, by relative path) followed by the uploads."""
        found: dict[str, VideoEntry] = {}
        if self.folder and self.folder.is_dir():
            for path in sorted(self.folder.rglob("*")):
                if len(found) >= MAX_FOLDER_VIDEOS:
                    log.warning("%s: more than %d videos; listing the first ones", self.folder, MAX_FOLDER_VIDEOS)
                    break
                if path.suffix.lower() in VIDEO_SUFFIXES and self._inside_folder(path):
                    rel = path.relative_to(self.folder).as_posix()
                    vid = "f" + hashlib.sha1(rel.encode()).hexdigest()[:12]
                    old = self._folder_entries.get(vid)
                    found[vid] = old if old and old.path == path else VideoEntry(vid, rel, path, "folder")
        with self._lock:
            self._folder_entries = found
            return list(found.values()) + list(self._uploads.values())

    def _inside_folder(self, path: Path) -> bool:
        """A regular file whose real location is inside the folder (symbolic links out are skipped)."""
        try:
            return path.is_file() and path.resolve().is_relative_to(self.folder)
        except OSError:
            return False

    def get(self, video_id: str) -> VideoEntry:
        with self._lock:
            entry = self._uploads.get(video_id) or self._folder_entries.get(video_id)
        if entry is None and video_id.startswith("f"):
            entry = next((e for e in self.scan() if e.id == video_id), None)
        if entry is None:
            raise AvsepError(f"no video with id {video_id!r}: reload the page to see the current list")
        return entry

    def check(self, entry: VideoEntry) -> dict:
        """Probe a video once (cached): raises a one-line AvsepError if the app cannot use it."""
        if entry.info is None:
            entry.info = check_video(entry.path, entry.name, self.max_seconds)
        return entry.info

    # --- uploads -------------------------------------------------------------------------------
    def add_upload(self, stream: BinaryIO, length: int | None, filename: str) -> VideoEntry:
        """Save an uploaded body of ``length`` bytes, check it and register it."""
        limit_mb = self.max_upload_bytes / 2 ** 20
        if length is None:
            raise UploadError("the upload has no Content-Length", 411)
        if length > self.max_upload_bytes:
            raise UploadError(f"{safe_name(filename)} is {length / 2 ** 20:.1f} MB; uploads are limited to "
                              f"{limit_mb:g} MB (--max-upload-mb)", 413)
        if length == 0:
            raise UploadError(f"{safe_name(filename)} is empty")
        vid = "u" + secrets.token_hex(6)
        folder = self.uploads_dir / vid
        folder.mkdir()
        entry = VideoEntry(vid, safe_name(filename), folder / safe_name(filename), "upload")
        try:
            self._receive(stream, length, entry.path)
            self.check(entry)
        except AvsepError as err:
            shutil.rmtree(folder, ignore_errors=True)
            raise err if isinstance(err, UploadError) else UploadError(str(err)) from None
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        with self._lock:
            self._uploads[vid] = entry
            dropped = [self._uploads.popitem(last=False)[1] for _ in range(len(self._uploads) - self.max_uploads)]
        for old in dropped:
            log.info("upload limit (%d): removing the oldest upload, %s", self.max_uploads, old.name)
            shutil.rmtree(old.path.parent, ignore_errors=True)
        return entry

    @staticmethod
    def _receive(stream: BinaryIO, length: int, dest: Path) -> None:
        remaining = length
        with open(dest, "wb") as f:
            while remaining:
                chunk = stream.read(min(CHUNK, remaining))
                if not chunk:
                    raise UploadError("the upload was interrupted before its end")
                f.write(chunk)
                remaining -= len(chunk)

    def remove_all_uploads(self) -> None:
        with self._lock:
            self._uploads.clear()
        shutil.rmtree(self.uploads_dir, ignore_errors=True)
