"""Decoding: audio and frames from any container FFmpeg reads (via PyAV), and fast WAV I/O.

This is the first stage of the data path. ``avsep preprocess`` uses :func:`load_audio` and
:func:`read_frames` once per video; the training loader then reads random windows of the
resulting 16-bit WAV files with :func:`read_wav`, which touches only the bytes it returns.
"""
from __future__ import annotations

import math
import os
import struct
from typing import Any, Iterator, Optional, Tuple

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

from avsep.errors import AvsepError
from avsep.utils import atomic_path


# FFmpeg errors, plus the few Python errors PyAV raises for files it cannot make sense of.
_DECODE_ERRORS = (av.error.FFmpegError, OSError, ValueError, EOFError)


def _reason(err: BaseException) -> str:
    """A short text for a decoding error, without the file name PyAV puts in it."""
    return getattr(err, "strerror", None) or str(err) or type(err).__name__


def _open(path: "str | os.PathLike[str]") -> Any:
    try:
        return av.open(str(path), metadata_errors="ignore")
    except _DECODE_ERRORS as err:
        raise AvsepError(f"{path}: cannot decode: {_reason(err)}") from None


def _video_stream(container: Any) -> Optional[Any]:
    """The first real video stream; cover art in audio files (an "attached picture") is not one."""
    for stream in container.streams.video:
        disposition = getattr(stream, "disposition", None)
        attached = getattr(getattr(av, "stream", None), "Disposition", None)
        if disposition is not None and attached is not None and disposition & attached.attached_pic:
            continue
        return stream
    return None


# --- decoding -------------------------------------------------------------------------------

def load_audio(path: "str | os.PathLike[str]", sample_rate: int = 11025) -> np.ndarray:
    """Decode the first audio stream of ``path`` as mono float32 at ``sample_rate`` Hz.

    Returns an array of shape ``(num_samples,)`` with values in about [-1, 1]. Raises
    :class:`AvsepError` naming the file if it has no audio stream or cannot be decoded.
    """
    with _open(path) as container:
        if not container.streams.audio:
            raise AvsepError(f"{path}: no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        try:
            for frame in container.decode(stream):
                # Timestamps play no part in resampling; gaps or jumps in them only confuse it.
                frame.pts = None
                chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
        except _DECODE_ERRORS as err:
            raise AvsepError(f"{path}: cannot decode: {_reason(err)}") from None
    if not chunks:
        return np.zeros(0, np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _resized_size(width: int, height: int, short_side: Optional[int]) -> Tuple[int, int]:
    if not short_side:
        return width, height
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _pixel_aspect(stream: Any) -> float:
    """The stream's sample (pixel) aspect ratio, width over height; 1 where unknown or square."""
    ratio = getattr(stream.codec_context, "sample_aspect_ratio", None) or getattr(stream, "sample_aspect_ratio", None)
    return float(ratio) if ratio and float(ratio) > 0 else 1.0


_T = Image.Transpose
# Counter-clockwise quarter turns, 0 to 3, as PIL transposes.
_TURNS = (None, _T.ROTATE_90, _T.ROTATE_180, _T.ROTATE_270)
# The transposes that make the width the height, and those that mirror.
_SWAPPING = (_T.ROTATE_90, _T.ROTATE_270, _T.TRANSPOSE, _T.TRANSVERSE)
_MIRRORING = (_T.FLIP_LEFT_RIGHT, _T.FLIP_TOP_BOTTOM, _T.TRANSPOSE, _T.TRANSVERSE)


def _display_matrix(frame: Any) -> Optional[Tuple[int, ...]]:
    """The frame's display matrix as FFmpeg lays it out (a, b, u, c, d, v, x, y, w; native int32,
    a-d in 16.16 fixed point); None where it has none, or where this PyAV cannot give frame side
    data as bytes (then only the turn of ``frame.rotation`` is known)."""
    try:
        data = frame.side_data.get(av.sidedata.sidedata.Type.DISPLAYMATRIX)
        return struct.unpack("=9i", bytes(data)[:36]) if data is not None else None
    except (AttributeError, TypeError, ValueError, IndexError, KeyError, struct.error):
        return None


def _orientation(frame: Any) -> Optional[Any]:
    """The PIL transpose that shows the frame as players do (a phone's display matrix), None for
    none. The matrix itself is read because it can be mirrored (some front cameras' videos), which
    PyAV's ``frame.rotation`` ignores: that would show such a video unmirrored, and can name the
    wrong turn."""
    matrix = _display_matrix(frame)
    if matrix is None:
        return _TURNS[round((getattr(frame, "rotation", 0) or 0) / 90) % 4]
    return _autorotation(matrix)


def _autorotation(matrix: Tuple[int, ...]) -> Optional[Any]:
    """FFmpeg's own autorotation (fftools, ffmpeg_filter.c) as a PIL transpose: the matrix's
    clockwise angle as its get_rotation rounds it, then the sign of ``c`` (quarter turns) or of
    ``d`` (half and no turn) tells a mirrored form from a plain one. Other angles, which FFmpeg
    turns by within the stored size, are rounded to the nearest quarter turn instead."""
    a, b, _, c, d = matrix[:5]
    scale_x, scale_y = math.hypot(a, c), math.hypot(b, d)
    if not (scale_x and scale_y):  # degenerate: FFmpeg's angle is NaN there, and it applies nothing
        return None
    clockwise = round(math.degrees(math.atan2(b / scale_y, a / scale_x))) % 360
    if clockwise == 90:      # transpose=cclock_flip or transpose=clock
        return _T.TRANSPOSE if c > 0 else _T.ROTATE_270
    if clockwise == 180:     # hflip (a < 0 at this angle), then vflip where d < 0
        return _T.ROTATE_180 if d < 0 else _T.FLIP_LEFT_RIGHT
    if clockwise == 270:     # transpose=clock_flip or transpose=cclock
        return _T.TRANSVERSE if c < 0 else _T.ROTATE_90
    if clockwise == 0:       # vflip where d < 0
        return _T.FLIP_TOP_BOTTOM if d < 0 else None
    return _TURNS[round(-clockwise / 90) % 4]


def _display_size(width: int, height: int, pixel_aspect: float, orientation: Optional[Any]) -> Tuple[int, int]:
    """The size a player shows a ``width`` x ``height`` picture at: square pixels, then turned
    (``orientation``, a PIL transpose from :func:`_orientation`)."""
    width = max(1, round(width * pixel_aspect))
    return (height, width) if orientation in _SWAPPING else (width, height)


def _to_image(frame: Any, short_side: Optional[int], pixel_aspect: float,
              reformatter: VideoReformatter) -> Image.Image:
    """Convert a decoded frame to an RGB image as players show it (square pixels, turned and
    mirrored by its display matrix), with its shorter side ``short_side`` pixels."""
    # Resized in the stored orientation (the shorter side is the same once turned).
    width, height = _resized_size(*_display_size(frame.width, frame.height, pixel_aspect, None), short_side)
    # One swscale pass converts YUV to RGB and resizes: about 3x faster for 720p sources than
    # converting at full size and resizing with PIL. AREA (box averaging) is the right filter
    # to shrink without aliasing; BILINEAR for the rare source smaller than the target.
    shrink = width * height <= frame.width * frame.height
    # Our own scaler, on one thread: PyAV 18.1.1 shares one scaler per thread between every
    # frame.reformat/to_ndarray/to_image, with a thread pool unless told otherwise, and a process
    # forked after a conversion (a DataLoader worker, a process pool) inherits that pool without
    # its threads and hangs at its next conversion (tests/data/test_decode.py).
    rgb = reformatter.reformat(
        frame, width=width, height=height, format="rgb24", interpolation="AREA" if shrink else "BILINEAR",
        threads=1)
    image = Image.fromarray(rgb.to_ndarray())  # already rgb24: no conversion, so no shared scaler
    orientation = _orientation(frame)
    # Checked against ffmpeg's own autorotation: tests/data/test_decode.py.
    return image.transpose(orientation) if orientation is not None else image


def _clock_start(container: Any, video: Any) -> float:
    """Where time 0 of a file's frames lies, in seconds of its streams' clock: the first audio
    sample when there is audio (:func:`load_audio` starts there, so each frame is shown beside the
    sound played with it even where the streams start apart), else the video stream's start."""
    for stream in (*container.streams.audio[:1], video):
        began = _start_seconds(stream)
        if began is not None:
            return began
    return 0.0


def _start_seconds(stream: Any) -> Optional[float]:
    """A stream's start time in seconds, None where the file does not give it."""
    if stream.start_time is None or not stream.time_base:
        return None
    return float(stream.start_time * stream.time_base)


class _MissedSeek(Exception):
    """A seek landed after the first time asked for (as FFmpeg does in some containers, MPEG-TS
    among them), or on frames without times: decode from the beginning instead."""


def read_frames(path: "str | os.PathLike[str]", fps: float = 8.0,
                short_side: Optional[int] = 256, start: float = 0.0) -> Iterator[Image.Image]:
    """Yield the frames shown at times 0, 1/fps, 2/fps, ... as RGB images, from ``start`` seconds
    (rounded to the nearest of those times) on.

    Source frames are duplicated or dropped as needed; times come from each frame's
    pts * time_base, counted from the first audio sample (or, without audio, from the video
    stream's start): a video that starts late shows its first frame until then. Images are as
    players show them: a phone video's rotation (and mirroring) is applied and non-square
    pixels are made square, so their size is the one :func:`probe` gives. Each image is resized
    so that its shorter side is ``short_side`` pixels (``None`` keeps that size). Only frames
    that are yielded are converted, so a 30 fps video sampled at 8 fps costs little more than
    decoding it; with ``start``, the file is first sought to a key frame a second or more before
    it, so that a part late in a long video is not decoded from the beginning (where the seek
    misses, it is, and the frames are the same). Raises :class:`AvsepError` if the file has no
    video stream.
    """
    if fps <= 0:
        raise AvsepError(f"fps must be positive, got {fps}")
    first = max(0, round(start * fps))
    try:
        # _MissedSeek comes at the first decoded frame, before anything is yielded.
        yield from _sampled_frames(path, fps, short_side, first, seek=first > 0)
    except _MissedSeek:
        yield from _sampled_frames(path, fps, short_side, first, seek=False)


def _sampled_frames(path: "str | os.PathLike[str]", fps: float, short_side: Optional[int], first: int,
                    seek: bool) -> Iterator[Image.Image]:
    """:func:`read_frames` from output frame ``first`` on, decoding from a key frame before it
    (``seek``) or from the beginning."""
    step = 1.0 / fps
    eps = 1e-6  # a frame whose time equals a sampling time is the one shown at it
    with _open(path) as container:
        stream = _video_stream(container)
        if stream is None:
            raise AvsepError(f"{path}: no video stream")
        stream.thread_type = "AUTO"
        pixel_aspect = _pixel_aspect(stream)
        reformatter = VideoReformatter()
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        origin = _clock_start(container, stream)
        sought = seek and _seek(container, stream, origin + first * step - 1.0)
        k = first              # index of the next output frame
        shown = None           # the most recent decoded frame: the one on screen until the next
        shown_image = None     # ``shown`` converted, made only when first needed
        end = 0.0              # time at which ``shown`` stops being on screen
        try:
            for i, frame in enumerate(container.decode(stream)):
                if sought and i == 0 and (frame.time is None or frame.time - origin > k * step + eps):
                    raise _MissedSeek
                t = (frame.time - origin) if frame.time is not None else i / rate
                # Sampling times before this frame's time show the previous frame.
                while shown is not None and k * step < t - eps:
                    if shown_image is None:
                        shown_image = _to_image(shown, short_side, pixel_aspect, reformatter)
                    yield shown_image.copy()
                    k += 1
                shown, shown_image = frame, None
                duration = getattr(frame, "duration", None)
                end = t + (float(duration * frame.time_base) if duration and frame.time_base else 1.0 / rate)
        except _DECODE_ERRORS as err:
            raise AvsepError(f"{path}: cannot decode video: {_reason(err)}") from None
        if sought and shown is None:
            raise _MissedSeek
        # The last frame stays on screen for its own duration.
        while shown is not None and k * step < end - eps:
            if shown_image is None:
                shown_image = _to_image(shown, short_side, pixel_aspect, reformatter)
            yield shown_image.copy()
            k += 1


def _seek(container: Any, stream: Any, seconds: float) -> bool:
    """Seek to the key frame at or before ``seconds`` of the streams' clock; False where that
    lies before the stream's start or the file cannot seek (it is then decoded from its start)."""
    if seconds <= (_start_seconds(stream) or 0.0) or not stream.time_base:
        return False
    try:
        container.seek(int(seconds / stream.time_base), stream=stream, backward=True)
    except _DECODE_ERRORS:
        return False
    return True


def probe(path: "str | os.PathLike[str]") -> dict:
    """Describe a media file, decoding at most its first video frame (for a phone's rotation).

    Returns ``{"duration": seconds, "has_audio": bool, "has_video": bool, "width": int,
    "height": int, "fps": float, "audio_rate": int, "container": str, "vcodec": str | None,
    "acodec": str | None, "mirrored": bool}``; width, height and fps are 0 without a video
    stream, audio_rate 0 without an audio stream. Width and height are the size players show
    (rotation applied, pixels made square), the size of the images :func:`read_frames` yields;
    ``mirrored`` says that its display matrix mirrors the picture (not every browser does).
    """
    with _open(path) as container:
        video = _video_stream(container)
        duration = container.duration / av.time_base if container.duration else 0.0
        if not duration:
            # Some containers (e.g. WebM from some muxers) only know their streams' durations.
            duration = max((float(s.duration * s.time_base) for s in container.streams
                            if s.duration and s.time_base), default=0.0)
        info = {"duration": float(duration), "has_audio": bool(container.streams.audio),
                "has_video": video is not None, "width": 0, "height": 0, "fps": 0.0,
                "audio_rate": int(container.streams.audio[0].rate or 0) if container.streams.audio else 0,
                "container": container.format.name, "vcodec": video.codec_context.name if video is not None else None,
                "acodec": container.streams.audio[0].codec_context.name if container.streams.audio else None,
                "mirrored": False}
        if video is not None:
            orientation = _first_frame_orientation(container, video)
            width, height = _display_size(int(video.codec_context.width), int(video.codec_context.height),
                                          _pixel_aspect(video), orientation)
            info.update(width=width, height=height, fps=float(video.average_rate or video.guessed_rate or 0),
                        mirrored=orientation in _MIRRORING)
        return info


def _first_frame_orientation(container: Any, stream: Any) -> Optional[Any]:
    """The :func:`_orientation` of the stream's first frame (PyAV gives the display matrix per
    frame); None for a stream with no decodable frame, whose decoding reports its own error later."""
    try:
        frame = next(container.decode(stream), None)
    except _DECODE_ERRORS:
        return None
    return _orientation(frame) if frame is not None else None


# --- WAV ------------------------------------------------------------------------------------

_PCM, _FLOAT, _EXTENSIBLE = 1, 3, 0xFFFE
# (format tag, bits per sample) -> (numpy dtype, scale to [-1, 1])
_WAV_DTYPES = {(_PCM, 16): (np.dtype("<i2"), 1 / 32768), (_FLOAT, 32): (np.dtype("<f4"), 1.0),
               (_PCM, 32): (np.dtype("<i4"), 1 / 2147483648)}


def write_wav(path: "str | os.PathLike[str]", audio: np.ndarray, sample_rate: int) -> None:
    """Write mono ``audio`` of shape ``(num_samples,)`` as 16-bit PCM WAV, atomically.

    Samples are scaled by 32768 (the inverse of :func:`read_wav`) and clipped to 16 bits.
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"write_wav expects mono audio of shape (n,), got {audio.shape}")
    pcm = np.clip(np.round(audio * 32768.0), -32768, 32767).astype("<i2")
    size = pcm.nbytes
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + size, b"WAVE", b"fmt ", 16, _PCM, 1,
                         int(sample_rate), int(sample_rate) * 2, 2, 16, b"data", size)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(header)
            f.write(pcm.tobytes())


def _wav_header(f: Any, path: Any) -> Tuple[np.dtype, float, int, int, int, int]:
    """Parse a RIFF/WAVE header from the open file ``f``.

    Returns ``(dtype, scale, channels, sample_rate, data_offset, num_samples)``.
    """
    riff = f.read(12)
    if len(riff) < 12 or riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise AvsepError(f"{path}: not a WAV file")
    fmt = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            raise AvsepError(f"{path}: WAV file has no {'data' if fmt else 'fmt'} chunk")
        chunk_id, size = struct.unpack("<4sI", chunk)
        if chunk_id == b"fmt ":
            body = f.read(size)
            if len(body) < 16:
                raise AvsepError(f"{path}: WAV fmt chunk too short ({len(body)} bytes)")
            tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _EXTENSIBLE and len(body) >= 26:
                tag = struct.unpack("<H", body[24:26])[0]  # the sub-format GUID starts with the tag
            fmt = (tag, channels, rate, bits)
            f.seek(size & 1, os.SEEK_CUR)  # chunks are padded to an even size
        elif chunk_id == b"data":
            if fmt is None:
                raise AvsepError(f"{path}: WAV data chunk before its fmt chunk")
            tag, channels, rate, bits = fmt
            if (tag, bits) not in _WAV_DTYPES or channels < 1:
                raise AvsepError(f"{path}: unsupported WAV encoding (format {tag}, {bits} bits); "
                                 "only 16-bit PCM and 32-bit float are read directly")
            dtype, scale = _WAV_DTYPES[(tag, bits)]
            offset = f.tell()
            # Streamed writers leave the size at 0 or 0xFFFFFFFF: trust the file's length instead.
            available = os.fstat(f.fileno()).st_size - offset
            if size == 0 or size > available:
                size = available
            return dtype, scale, channels, rate, offset, size // (dtype.itemsize * channels)
        else:
            f.seek(size + (size & 1), os.SEEK_CUR)


def wav_info(path: "str | os.PathLike[str]") -> Tuple[int, int]:
    """``(sample_rate, num_samples)`` of a WAV file, from its header alone."""
    try:
        with open(path, "rb") as f:
            _, _, _, rate, _, count = _wav_header(f, path)
    except OSError as err:
        raise AvsepError(f"{path}: cannot read WAV file: {err.strerror or err}") from None
    return rate, count


def read_wav(path: "str | os.PathLike[str]", start: int = 0, length: Optional[int] = None) -> np.ndarray:
    """Read samples ``start .. start + length`` of a WAV file as float32, shape ``(length,)``.

    Only the requested window is read from disk. Parts of the window outside the file
    (``start < 0``, or past the end) are zeros; ``length=None`` reads to the end. Multi-channel
    files are averaged to mono.
    """
    try:
        with open(path, "rb") as f:
            dtype, scale, channels, _, offset, count = _wav_header(f, path)
            if length is None:
                length = max(0, count - start)
            out = np.zeros(length, np.float32)
            first, last = max(start, 0), min(start + length, count)
            if last > first:
                f.seek(offset + first * dtype.itemsize * channels)
                data = np.frombuffer(f.read((last - first) * dtype.itemsize * channels), dtype)
                data = data[: (len(data) // channels) * channels].reshape(-1, channels)
                samples = data[:, 0] if channels == 1 else data.mean(axis=1, dtype=np.float32)
                out[first - start: first - start + len(samples)] = samples * np.float32(scale)
    except OSError as err:
        raise AvsepError(f"{path}: cannot read WAV file: {err.strerror or err}") from None
    return out
