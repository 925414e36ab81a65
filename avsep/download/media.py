"""Check that a download is a playable video with sound, and make it an H.264 + AAC mp4.

A file only counts as done once a video frame and some audio decode (PyAV): servers return HTML
error pages under video names, connections drop, and ffmpeg cuts can come out empty. Anything that
is not already mp4 + H.264 + AAC at most ``max_height`` lines high is remuxed (container only) or
converted with ffmpeg, so the output plays anywhere and ``avsep preprocess`` reads it as is.
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .failures import MediaError


@dataclass(frozen=True)
class MediaInfo:
    container: str
    vcodec: Optional[str]
    acodec: Optional[str]
    width: int
    height: int
    duration: Optional[float]  # seconds


def probe(path: Path) -> MediaInfo:
    """Container, codecs, size and duration; :class:`MediaError` if it is not a media file."""
    from avsep.data.decode import probe as probe_media
    from avsep.errors import AvsepError

    try:
        info = probe_media(path)
    except AvsepError as err:
        raise MediaError(f"not a video: {str(err).split(': ', 1)[-1]}") from None
    return MediaInfo(info["container"], info["vcodec"], info["acodec"], info["width"], info["height"],
                     info["duration"] or None)


def check_playable(path: Path, audio_seconds: float = 0.2, max_packets: int = 5000) -> MediaInfo:
    """Decode one video frame and ``audio_seconds`` of audio; raise :class:`MediaError` if that fails."""
    import av

    info = probe(path)
    if not info.vcodec:
        raise MediaError("no video stream")
    if not info.acodec:
        raise MediaError("no audio stream")
    got_frame, samples, rate = False, 0, None
    try:
        with av.open(str(path)) as container:
            streams = [container.streams.video[0], container.streams.audio[0]]
            rate = streams[1].codec_context.sample_rate or 1
            for n, packet in enumerate(container.demux(streams)):
                for frame in packet.decode():
                    if packet.stream.type == "video":
                        got_frame = True
                    else:
                        samples += frame.samples
                if (got_frame and samples >= audio_seconds * rate) or n >= max_packets:
                    break
    except (av.FFmpegError, OSError, ValueError) as err:
        raise MediaError(f"undecodable: {_short(err)}") from None
    if not got_frame:
        raise MediaError("undecodable: no video frame decodes")
    if samples == 0:
        raise MediaError("undecodable: no audio decodes")
    return info


def needs_conversion(info: MediaInfo, max_height: int) -> tuple[bool, bool]:
    """(convert video, convert audio); both False but a non-mp4 container means remux only."""
    video = info.vcodec != "h264" or info.height > max_height
    audio = info.acodec != "aac"
    return video, audio


def to_mp4(src: Path, dest: Path, max_height: int, ffmpeg: str = "ffmpeg") -> Path:
    """Write ``src`` to ``dest`` (.mp4) as H.264 + AAC, at most ``max_height`` high; returns dest.

    Streams already in the right codec are copied, so a compatible file is only remuxed.
    """
    info = check_playable(src)
    convert_video, convert_audio = needs_conversion(info, max_height)
    if not (convert_video or convert_audio) and src.suffix.lower() == ".mp4" and "mp4" in info.container:
        shutil.move(str(src), str(dest))
        return dest
    video_args = (["-vf", f"scale=-2:'min(ih,{max_height})'", "-c:v", "libx264", "-preset", "veryfast",
                   "-crf", "23", "-pix_fmt", "yuv420p"] if convert_video else ["-c:v", "copy"])
    audio_args = ["-c:a", "aac", "-b:a", "128k"] if convert_audio else ["-c:a", "copy"]
    command = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(src),
               "-map", "0:v:0", "-map", "0:a:0", *video_args, *audio_args, "-movflags", "+faststart",
               "-f", "mp4", str(dest)]
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise MediaError(f"conversion failed: {_short(result.stderr) or f'ffmpeg exit status {result.returncode}'}")
    return dest


def _short(err: object) -> str:
    return " ".join(str(err).split())[:200]
