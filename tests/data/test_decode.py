"""Decoding with PyAV and the WAV reader of the training loader's hot path."""
from __future__ import annotations

import multiprocessing
import shutil
import struct
import subprocess
import time
from fractions import Fraction
from pathlib import Path
from types import SimpleNamespace

import av
import numpy as np
import pytest
from PIL import Image

from avsep.data import decode
from avsep.data.decode import load_audio, probe, read_frames, read_wav, wav_info, write_wav
from avsep.errors import AvsepError


def make_video(path: Path, seconds: float = 7.0, fps: int = 24, size=(160, 120), tone: float = 440.0,
               amplitude: float = 0.3, audio: bool = True, video: bool = True, counter: bool = False,
               sample_rate: int = 22050, delay_frames: int = 0, matrix=None) -> Path:
    """An H.264 + AAC test video; with ``counter``, frame i is a flat gray of level 20 + 8 i.
    With ``delay_frames``, the pictures start that many frames after the sound; ``matrix`` is a
    display matrix (9 integers in FFmpeg's layout)."""
    container = av.open(str(path), "w")
    # Every stream must exist before the first packet is muxed (that writes the header).
    if video:
        vstream = container.add_stream("libx264", rate=fps)
        vstream.width, vstream.height, vstream.pix_fmt = size[0], size[1], "yuv420p"
        if matrix:
            vstream.set_display_matrix(matrix)
    if audio:
        astream = container.add_stream("aac", rate=sample_rate)
        astream.layout = "mono"
    if video:
        for i in range(int(round(seconds * fps))):
            image = np.zeros((size[1], size[0], 3), np.uint8)
            if counter:
                image[:] = 20 + 8 * i
            else:
                image[..., 0] = (i * 10) % 256
                image[:, : (i % size[0]), 1] = 255
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i + delay_frames
            container.mux(vstream.encode(frame))
        container.mux(vstream.encode())
    if audio:
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        samples = (amplitude * np.sin(2 * np.pi * tone * t)).astype(np.float32)
        for start in range(0, len(samples), 1024):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1024], format="flt", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, start
            container.mux(astream.encode(frame))
        container.mux(astream.encode())
    container.close()
    return path


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("decode") / "tone.mp4")


# --- audio ----------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [11025, 16000])
def test_load_audio_resamples_to_mono_float(video, rate):
    audio = load_audio(video, sample_rate=rate)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # AAC adds an encoder delay and pads the last frame: allow a few hundred samples.
    assert abs(len(audio) - 7 * rate) < 0.05 * rate
    spectrum = np.abs(np.fft.rfft(audio[rate:3 * rate]))
    assert np.argmax(spectrum) * rate / (2 * rate) == pytest.approx(440, abs=2)
    assert 0.25 < np.percentile(np.abs(audio), 99.5) < 0.35


def test_load_audio_reads_wav(tmp_path):
    signal = np.sin(np.linspace(0, 200, 5000)).astype(np.float32) * 0.5
    write_wav(tmp_path / "a.wav", signal, 11025)
    np.testing.assert_allclose(load_audio(tmp_path / "a.wav", 11025), signal, atol=1e-4)


def test_load_audio_errors_name_the_file(tmp_path):
    silent_video = make_video(tmp_path / "noaudio.mp4", seconds=1, audio=False)
    with pytest.raises(AvsepError, match="noaudio.mp4: no audio stream"):
        load_audio(silent_video)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).bytes(20000))
    with pytest.raises(AvsepError, match="junk.mp4: cannot decode"):
        load_audio(junk)
    with pytest.raises(AvsepError, match="missing.mp4"):
        load_audio(tmp_path / "missing.mp4")


# --- frames ---------------------------------------------------------------------------------

def test_read_frames_samples_at_fps_and_resizes(video):
    frames = list(read_frames(video, fps=8, short_side=256))
    assert abs(len(frames) - 7 * 8) <= 1
    assert all(f.mode == "RGB" and f.size == (341, 256) for f in frames)
    portrait = list(read_frames(video, fps=2, short_side=64))
    assert len(portrait) == 14 and portrait[0].size == (85, 64)
    assert next(read_frames(video, short_side=None)).size == (160, 120)


def _frame_size(video: Path, short_side: int) -> tuple:
    return next(read_frames(video, fps=2, short_side=short_side)).size


@pytest.mark.timeout(120)
def test_frames_decode_in_a_process_forked_after_this_one_decoded(video):
    # PyAV 18.1.1 shares one scaler per thread between conversions, with a thread pool (one
    # thread a core); a forked child (a DataLoader worker) inherited it without its threads and
    # hung at its next conversion. avsep converts with a scaler of its own on one thread. (On a
    # 1-core machine the pool has one thread and this cannot fail.)
    assert _frame_size(video, 96) == (128, 96)
    av.VideoFrame(64, 48, "yuv420p").reformat(width=32, height=24, format="rgb24")  # PyAV's shared scaler
    with multiprocessing.get_context("fork").Pool(1) as pool:
        try:
            assert pool.apply_async(_frame_size, (video, 60)).get(timeout=60) == (80, 60)
        finally:
            pool.terminate()


@pytest.mark.parametrize("source_fps", [12, 5])
def test_read_frames_picks_the_frame_shown_at_each_time(tmp_path, source_fps):
    # Dropping (12 -> 8 fps) and duplicating (5 -> 8 fps): output k shows source frame floor(k * src / 8).
    path = make_video(tmp_path / "counter.mp4", seconds=2, fps=source_fps, counter=True, audio=False)
    levels = [np.asarray(f).mean() for f in read_frames(path, fps=8, short_side=None)]
    assert len(levels) == 16
    shown = [round((level - 20) / 8) for level in levels]
    assert shown == [k * source_fps // 8 for k in range(16)]


@pytest.mark.parametrize("audio", [True, False])
def test_frames_are_timed_by_the_sound_when_the_picture_starts_late(tmp_path, audio):
    # The picture starts 0.5 s after the sound: until then the first frame is shown, so that each
    # frame stays beside the sound played with it. Without sound, the picture's start is time 0.
    path = make_video(tmp_path / "late.mp4", seconds=2, fps=8, counter=True, audio=audio, delay_frames=4)
    shown = [round((np.asarray(f).mean() - 20) / 8) for f in read_frames(path, fps=8, short_side=None)]
    assert shown == ([0] * 4 + list(range(16)) if audio else list(range(16)))


def _silent_video(path: Path, pictures, fps: int, **settings) -> Path:
    """An H.264 video of ``pictures`` ((H, W, 3) uint8 arrays, one a frame), no sound; ``settings``
    go on the stream's codec (gop_size, sample_aspect_ratio), ``rotation`` (counter-clockwise
    degrees) or ``matrix`` (9 integers in FFmpeg's layout) to its display matrix."""
    pictures = list(pictures)
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.height, stream.width = pictures[0].shape[:2]
    stream.pix_fmt = "yuv420p"
    rotation, matrix = settings.pop("rotation", 0), settings.pop("matrix", None)
    for name, value in settings.items():
        setattr(stream.codec_context, name, value)
    if rotation:
        stream.set_display_rotation(rotation)
    if matrix:
        stream.set_display_matrix(matrix)
    for i, picture in enumerate(pictures):
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts = i
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
    container.close()
    return path


def _numbered_video(path: Path, frames: int, fps: int, gop: int) -> Path:
    """Frame i shows i % 25 in its left half and i // 25 in its right half, as grey levels."""
    pictures = np.zeros((frames, 16, 32, 3), np.uint8)
    for i, picture in enumerate(pictures):
        picture[:, :16], picture[:, 16:] = 20 + 8 * (i % 25), 20 + 8 * (i // 25)
    return _silent_video(path, pictures, fps, gop_size=gop)


def _numbers(frames) -> list[int]:
    pixels = [np.asarray(f, dtype=float) for f in frames]
    return [round((p[:, 4:12].mean() - 20) / 8) + 25 * round((p[:, 20:28].mean() - 20) / 8) for p in pixels]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".ts"])
def test_frames_from_a_start_are_those_read_from_the_beginning(tmp_path, monkeypatch, suffix):
    # 12 s at 10 fps with a key frame every 2 s, read at 8 fps: seeking must not change a frame.
    # MP4 and Matroska seek to the key frame before the start; MPEG-TS seeks land after it, and
    # such a file is decoded from the beginning instead.
    path = _numbered_video(tmp_path / f"numbered{suffix}", frames=120, fps=10, gop=20)
    everything = _numbers(read_frames(path, fps=8, short_side=None))
    assert everything == [k * 10 // 8 for k in range(96)]
    decodings = []
    sampled = decode._sampled_frames
    monkeypatch.setattr(decode, "_sampled_frames", lambda *a, seek: decodings.append(seek) or sampled(*a, seek=seek))
    for start in (0.0, 0.06, 3.0, 7.94, 11.5, 30.0):
        decodings.clear()
        assert _numbers(read_frames(path, fps=8, short_side=None, start=start)) == everything[round(start * 8):], start
        if suffix != ".ts":
            assert decodings == [start >= 1.0], "sought where the start is a second or more in, and only then"


def test_read_frames_without_video_stream(tmp_path):
    path = make_video(tmp_path / "audio_only.mp4", seconds=1, video=False)
    with pytest.raises(AvsepError, match="audio_only.mp4: no video stream"):
        list(read_frames(path))


def test_probe(video, tmp_path):
    info = probe(video)
    assert info["duration"] == pytest.approx(7.0, abs=0.1)
    assert info["has_audio"] and info["has_video"]
    assert (info["width"], info["height"], info["fps"]) == (160, 120, 24.0)
    audio_only = probe(make_video(tmp_path / "a.mp4", seconds=1, video=False))
    assert audio_only["has_audio"] and not audio_only["has_video"] and audio_only["width"] == 0


def _marked_video(path: Path, rotation: int = 0, pixel_aspect=None, matrix=None) -> tuple[Path, np.ndarray]:
    """A 96x64 video whose stored picture has a red top-left corner and a blue bottom-right one,
    with a display rotation (counter-clockwise degrees) or matrix, and a sample aspect ratio."""
    picture = np.zeros((64, 96, 3), np.uint8)
    picture[:16, :24] = (255, 0, 0)
    picture[40:, 72:] = (0, 0, 255)
    settings = {"sample_aspect_ratio": pixel_aspect} if pixel_aspect else {}
    return _silent_video(path, [picture] * 4, 8, rotation=rotation, matrix=matrix, **settings), picture


def _corner_distance(image: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(image.astype(int) - expected.astype(int)).mean())


# Writing a display matrix needs PyAV 18; reading one (what avsep does) needs 14.1.
needs_rotation_writer = pytest.mark.skipif(not hasattr(av.video.stream.VideoStream, "set_display_rotation"),
                                           reason="PyAV writes display rotations from version 18")


@needs_rotation_writer
@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_frames_of_a_phone_video_are_turned_as_players_show_them(tmp_path, rotation):
    path, picture = _marked_video(tmp_path / "phone.mp4", rotation)
    shown = np.rot90(picture, k=rotation // 90)  # numpy turns counter-clockwise too
    image = np.asarray(next(read_frames(path, fps=8, short_side=None)))
    assert image.shape == shown.shape
    assert _corner_distance(image, shown) < 8  # the stored orientation is about 60 away
    info = probe(path)
    assert (info["height"], info["width"]) == shown.shape[:2] and not info["mirrored"]
    assert next(read_frames(path, fps=8, short_side=32)).size == (info["width"] * 32 // min(shown.shape[:2]),
                                                                     info["height"] * 32 // min(shown.shape[:2]))


@needs_rotation_writer
@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="the ffmpeg binary is the reference")
def test_the_turn_agrees_with_ffmpeg(tmp_path):
    # FFmpeg's own command line rotates by the display matrix unless told not to.
    path, _ = _marked_video(tmp_path / "phone.mp4", 90)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", str(tmp_path / "shown.png")], check=True)
    reference = np.asarray(Image.open(tmp_path / "shown.png").convert("RGB"))
    image = np.asarray(next(read_frames(path, fps=8, short_side=None)))
    assert image.shape == reference.shape and _corner_distance(image, reference) < 4


# Mirrored display matrices (negative determinant, as some front cameras write), by their 2x2
# part (a, b, c, d), and the picture FFmpeg shows for each; the names give the turn ffprobe reports.
_MIRRORED = {"hflip": ((-1, 0, 0, 1), lambda p: p[:, ::-1]),
             "vflip": ((1, 0, 0, -1), lambda p: p[::-1]),
             "mirrored-90": ((0, -1, -1, 0), lambda p: p[::-1, ::-1].swapaxes(0, 1)),
             "mirrored-270": ((0, 1, 1, 0), lambda p: p.swapaxes(0, 1))}


@needs_rotation_writer
@pytest.mark.skipif(not shutil.which("ffmpeg"), reason="the ffmpeg binary is the reference")
@pytest.mark.parametrize("mirror", list(_MIRRORED))
def test_mirrored_videos_are_shown_as_ffmpeg_shows_them(tmp_path, mirror):
    # PyAV's frame.rotation ignores a mirror: the matrix itself must be read to show these right.
    (a, b, c, d), shown = _MIRRORED[mirror]
    matrix = (a << 16, b << 16, 0, c << 16, d << 16, 0, 0, 0, 1 << 30)  # 16.16, and w in 2.30
    path, picture = _marked_video(tmp_path / "mirrored.mp4", matrix=matrix)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-frames:v", "1", str(tmp_path / "shown.png")], check=True)
    reference = np.asarray(Image.open(tmp_path / "shown.png").convert("RGB"))
    assert reference.shape == shown(picture).shape and _corner_distance(reference, shown(picture)) < 8
    image = np.asarray(next(read_frames(path, fps=8, short_side=None)))
    assert image.shape == reference.shape and _corner_distance(image, reference) < 4
    info = probe(path)
    assert (info["height"], info["width"]) == reference.shape[:2] and info["mirrored"]


def test_without_readable_side_data_the_turn_alone_is_applied():
    # PyAV versions that cannot give a frame's display matrix as bytes still give its rotation.
    assert decode._orientation(SimpleNamespace(rotation=90)) == Image.Transpose.ROTATE_90
    assert decode._orientation(SimpleNamespace(rotation=-180)) == Image.Transpose.ROTATE_180
    assert decode._orientation(SimpleNamespace(rotation=0)) is None


def test_non_square_pixels_are_made_square(tmp_path):
    path, picture = _marked_video(tmp_path / "anamorphic.mp4", pixel_aspect=Fraction(3, 2))
    assert (probe(path)["width"], probe(path)["height"]) == (144, 64)
    image = np.asarray(next(read_frames(path, fps=8, short_side=None)))
    wide = np.asarray(Image.fromarray(picture).resize((144, 64), Image.NEAREST))
    assert image.shape == (64, 144, 3) and _corner_distance(image, wide) < 8


# --- WAV ------------------------------------------------------------------------------------

def test_wav_round_trip_windows_and_padding(tmp_path):
    audio = np.random.default_rng(1).uniform(-1, 1, 20000).astype(np.float32)
    path = tmp_path / "x.wav"
    write_wav(path, audio, 11025)
    assert wav_info(path) == (11025, 20000)
    assert not list(tmp_path.glob("*.part"))
    tol = 0.5 / 32768 + 1e-7
    np.testing.assert_allclose(read_wav(path), audio, atol=tol)
    np.testing.assert_allclose(read_wav(path, 1000, 500), audio[1000:1500], atol=tol)
    tail = read_wav(path, 19900, 300)  # runs past the end: zero-padded
    assert tail.shape == (300,) and tail.dtype == np.float32
    np.testing.assert_allclose(tail[:100], audio[19900:], atol=tol)
    assert not tail[100:].any()
    head = read_wav(path, -10, 20)  # starts before the beginning
    assert not head[:10].any() and np.allclose(head[10:], audio[:10], atol=tol)
    assert not read_wav(path, 30000, 10).any()


def test_write_wav_clips_and_rejects_stereo(tmp_path):
    write_wav(tmp_path / "c.wav", np.array([2.0, -2.0, 0.5]), 8000)
    np.testing.assert_allclose(read_wav(tmp_path / "c.wav"), [1, -1, 0.5], atol=1e-4)
    with pytest.raises(ValueError):
        write_wav(tmp_path / "s.wav", np.zeros((2, 10)), 8000)


def _wav_bytes(data: np.ndarray, tag: int, channels: int, rate: int, extra_chunk: bool) -> bytes:
    body = data.tobytes()
    bits = data.dtype.itemsize * 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if extra_chunk:  # e.g. the LIST chunk FFmpeg writes, with an odd size to check the padding
        chunks += b"LIST" + struct.pack("<I", 5) + b"INFOx\0"
    chunks += b"data" + struct.pack("<I", len(body)) + body
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def test_read_wav_float_stereo_and_extra_chunks(tmp_path):
    mono = np.linspace(-0.5, 0.5, 1000, dtype="<f4")
    (tmp_path / "f.wav").write_bytes(_wav_bytes(mono, 3, 1, 16000, extra_chunk=True))
    assert wav_info(tmp_path / "f.wav") == (16000, 1000)
    np.testing.assert_array_equal(read_wav(tmp_path / "f.wav", 10, 5), mono[10:15])
    stereo = np.stack([np.full(100, 1000), np.full(100, 3000)], axis=1).astype("<i2")
    (tmp_path / "s.wav").write_bytes(_wav_bytes(stereo, 1, 2, 8000, extra_chunk=False))
    np.testing.assert_allclose(read_wav(tmp_path / "s.wav", 0, 4), 2000 / 32768)
    (tmp_path / "bad.wav").write_bytes(b"not a wav file at all")
    with pytest.raises(AvsepError, match="bad.wav: not a WAV file"):
        read_wav(tmp_path / "bad.wav")


def test_read_wav_window_is_fast(tmp_path):
    # The loader reads thousands of random 65535-sample windows per epoch.
    path = tmp_path / "long.wav"
    write_wav(path, np.random.default_rng(2).uniform(-1, 1, 11025 * 120).astype(np.float32), 11025)
    starts = np.random.default_rng(3).integers(0, 11025 * 120 - 65535, 200)
    began = time.perf_counter()
    for start in starts:
        window = read_wav(path, int(start), 65535)
    per_read = (time.perf_counter() - began) / len(starts)
    assert window.shape == (65535,)
    assert per_read < 0.005, f"{per_read * 1e3:.2f} ms per window"
