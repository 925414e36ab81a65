"""Fetch one item with the yt-dlp Python API into a private temporary folder.

yt-dlp is used as a library, with full URLs only (so ids that begin with ``-`` are never read as
options). Its own retries are switched off: the runner retries with backoff that honours
Retry-After and slows every worker down when YouTube throttles, which yt-dlp's per-request retries
cannot do. A VGGSound clip is cut on download (``download_ranges``): ffmpeg reads just that part
of the stream instead of the whole video.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any, Optional

from .indexes import Item
from .options import Options

log = logging.getLogger("avsep.download")
COOKIES = "cookies.txt"


class _YtdlpLogger:
    """Route yt-dlp's messages to debug logging: failures are reported by the runner, once."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    info = debug
    warning = debug
    error = debug


def ytdlp_params(item: Item, folder: Path, options: Options) -> dict[str, Any]:
    """The YoutubeDL parameters for one item, downloading into ``folder``."""
    from yt_dlp.utils import download_range_func

    height = options.max_height
    params: dict[str, Any] = {
        # Best video + best audio, preferring at most `height` lines, then H.264, AAC and mp4, so
        # that most downloads need no conversion. Taller-only videos are scaled down afterwards.
        "format": "bv*+ba/b",
        "format_sort": [f"res:{height}", "vcodec:h264", "acodec:aac", "ext:mp4:m4a"],
        "merge_output_format": "mp4",
        # The folder goes in `paths`, which yt-dlp does not expand as a template (OUT may contain '%').
        "paths": {"home": str(folder)},
        "outtmpl": {"default": "media.%(ext)s"},
        "noplaylist": True,
        "overwrites": True,
        "continuedl": False,
        "retries": 0,
        "extractor_retries": 0,
        "fragment_retries": 3,   # one lost HLS/DASH fragment should not restart a whole video
        "socket_timeout": options.socket_timeout,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _YtdlpLogger(),
    }
    if options.ffmpeg:
        params["ffmpeg_location"] = options.ffmpeg
    if options.rate_limit:
        params["ratelimit"] = options.rate_limit
    if options.cookies:
        # A private copy: yt-dlp rewrites its cookie file when it closes, and workers writing the
        # user's file at the same time could tear it (see fetch()).
        params["cookiefile"] = str(folder / COOKIES)
    if item.start is not None:
        end = item.start + item.duration if item.duration else float("inf")
        params["download_ranges"] = download_range_func(None, [(item.start, end)])
        params["force_keyframes_at_cuts"] = True  # re-encode at the cut: the clip starts exactly at `start`
    return params


def fetch(item: Item, folder: Path, options: Options) -> tuple[Path, dict[str, Any]]:
    """Download ``item`` into ``folder``; returns the file and yt-dlp's info dict.

    Raises yt-dlp's ``DownloadError`` (or anything else) on failure; see :mod:`.failures`.
    """
    import yt_dlp

    folder.mkdir(parents=True, exist_ok=True)
    if options.cookies:
        shutil.copyfile(options.cookies, folder / COOKIES)
        os.chmod(folder / COOKIES, 0o600)  # they are credentials
    with yt_dlp.YoutubeDL(ytdlp_params(item, folder, options)) as ydl:
        info = ydl.extract_info(item.url, download=True)
    path = _downloaded_file(info, folder)
    if path is None:
        raise FileNotFoundError(f"yt-dlp reported success but wrote no file for {item.url}")
    return path, info or {}


def _downloaded_file(info: Optional[dict], folder: Path) -> Optional[Path]:
    for download in (info or {}).get("requested_downloads") or []:
        path = download.get("filepath")
        if path and Path(path).is_file():
            return Path(path)
    # Fall back to whatever media file is there (not yt-dlp's .part or .ytdl leftovers).
    files = [p for p in folder.glob("media.*") if p.suffix not in (".part", ".ytdl", ".temp")]
    return max(files, key=lambda p: p.stat().st_size) if files else None
