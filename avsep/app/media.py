"""Checking a video before it is analysed, and a silent H.264 copy for browsers that cannot play it.

The page plays the pictures with a muted ``<video>`` element and every sound through the Web
Audio API (the original too), so a copy for the browser needs no audio track.
"""
from __future__ import annotations

import itertools
import logging
from pathlib import Path

import av
import numpy as np

from avsep.data.decode import probe, read_frames
from avsep.data.encode import write_mp4
from avsep.errors import AvsepError

log = logging.getLogger("avsep")
# What Chromium, Firefox and Safari all play (Safari: not VP8); anything else gets a copy.
BROWSER_CODECS = {"h264", "vp8", "vp9", "av1"}
BROWSER_CONTAINERS = {"mov", "mp4", "webm", "matroska"}
PREVIEW_SHORT_SIDE = 720
PREVIEW_MAX_FPS = 30.0


def check_video(path: Path, name: str, max_seconds: float) -> dict:
    """The probe of a video the app can analyse; a one-line AvsepError saying why not otherwise.

    Adds ``playable``: whether browsers can show the file as it is.
    """
    try:
        info = probe(path)
    except AvsepError:
        raise AvsepError(f"{name} is not a video that can be decoded (is it a video file?)") from None
    if not info["has_video"]:
        raise AvsepError(f"{name} has no video stream: avsep needs the pictures to know what to separate")
    if not info["has_audio"]:
        raise AvsepError(f"{name} has no audio stream: there is nothing to separate")
    if info["width"] < 2 or info["height"] < 2:
        raise AvsepError(f"{name}: the video stream has no usable frame size")
    if max_seconds and info["duration"] > max_seconds:
        raise AvsepError(f"{name} is {info['duration']:.0f} s long; this app analyses videos of up to "
                         f"{max_seconds:g} s (--max-seconds)")
    # A mirroring display matrix is not applied by every browser: the page would show the mirror
    # image of the frames analysed, and clicks would land on the wrong side. Such a file gets a copy.
    return {**info, "playable": browser_playable(path) and not info["mirrored"]}


def browser_playable(path: Path) -> bool:
    """Whether a browser's ``<video>`` can play the file's pictures without a copy."""
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            formats = set(container.format.name.split(","))
            codec = container.streams.video[0].codec_context.name if container.streams.video else ""
    except (av.error.FFmpegError, OSError, ValueError):
        return False
    return bool(formats & BROWSER_CONTAINERS) and codec in BROWSER_CODECS


def write_preview(source: Path, dest: Path, info: dict) -> Path:
    """A silent H.264 mp4 of ``source`` for the page (at most 720 p and 30 fps), written to
    ``dest``; returns ``dest``. The page maps clicks by the analysed frame's size, so a smaller
    copy does not change where a click lands."""
    fps = min(PREVIEW_MAX_FPS, info.get("fps") or 25.0)
    short = min(PREVIEW_SHORT_SIDE, info["width"], info["height"])
    rate = max(1, round(fps))
    tmp = dest.with_suffix(".part.mp4")
    log.info("%s cannot be played by browsers as it is: writing an H.264 copy", source.name)
    frames = read_frames(source, rate, short_side=short)
    first = next(frames, None)
    if first is None:
        raise AvsepError(f"{source.name}: no frame could be decoded")
    size = (first.width // 2 * 2, first.height // 2 * 2)   # yuv420p needs even sizes
    pictures = (np.asarray(image.crop((0, 0, *size)) if image.size != size else image)
                for image in itertools.chain([first], frames))
    write_mp4(tmp, pictures, size, rate, None, rate, n_frames=1)
    tmp.replace(dest)
    return dest
