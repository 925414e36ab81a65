"""Audio for the page: a stretch separated from its own windows equals the same stretch of the
whole separation, at any input rate, and chunks join without a seam."""
import io

import numpy as np
import pytest
from PIL import Image

from avsep.app.library import safe_name
from avsep.app.stems import span_audio, wav_bytes
from avsep.data.decode import read_wav
from avsep.errors import AvsepError
from avsep.inference import Box, Point, Separator, VideoClip
from tests.app.helpers import tiny_checkpoint


def clip(rate: int, seconds: float = 9.0) -> VideoClip:
    rng = np.random.default_rng(1)
    t = np.arange(int(seconds * rate)) / rate
    audio = 0.1 * np.sin(2 * np.pi * 330 * t) + 0.05 * rng.standard_normal(len(t))
    pixels = rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)
    return VideoClip(audio.astype(np.float32), rate, [Image.fromarray(pixels)] * int(seconds * 8), 8.0)


@pytest.fixture(scope="module")
def separator(tmp_path_factory):
    return Separator(tiny_checkpoint(tmp_path_factory.mktemp("stems") / "tiny.pt"), device="cpu")


@pytest.mark.parametrize("rate", [11025, 22050, 44100, 48000])
def test_a_stretch_equals_that_stretch_of_the_whole_separation(separator, rate):
    analysis = separator.analyze(clip(rate), progress=False)
    whole = analysis.separate(point=(40, 30))
    mixture = analysis.input_mixture
    n = len(mixture)
    for first, last in [(0, rate), (int(2.3 * rate), int(4.1 * rate)), (n - rate // 3, n), (n - 10, n + 500)]:
        part = span_audio(analysis, Point(40, 30), first, last)
        np.testing.assert_allclose(part, whole[first:min(last, n)], atol=2e-5)
        residual = span_audio(analysis, Point(40, 30), first, last, mode="residual")
        np.testing.assert_allclose(residual, (mixture - whole)[first:min(last, n)], atol=2e-5)
        np.testing.assert_array_equal(span_audio(analysis, None, first, last, mode="original"), mixture[first:last])
    # chunks as the page asks for them join into the whole stem
    edges = [0, int(0.7 * rate), int(2.7 * rate), int(5.0 * rate), n]
    joined = np.concatenate([span_audio(analysis, Box(0, 0, 80, 90), a, b) for a, b in zip(edges, edges[1:])])
    np.testing.assert_allclose(joined, analysis.separate(box=(0, 0, 80, 90)), atol=2e-5)


def test_bad_modes_and_missing_regions_are_one_line_errors(separator):
    analysis = separator.analyze(clip(11025, seconds=3), progress=False)
    with pytest.raises(AvsepError, match="mode='loud': choose one of spot, residual, original"):
        span_audio(analysis, Point(1, 1), 0, 10, mode="loud")
    with pytest.raises(AvsepError, match="give a point, a box or a track"):
        span_audio(analysis, None, 0, 10)
    assert span_audio(analysis, Point(1, 1), 50, 50).shape == (0,)


def test_wav_bytes_are_16_bit_pcm_that_read_back(tmp_path):
    audio = np.array([0.0, 0.5, -0.5, 1.5, -2.0], dtype=np.float32)
    path = tmp_path / "a.wav"
    path.write_bytes(wav_bytes(audio, 22050))
    np.testing.assert_allclose(read_wav(path), [0.0, 0.5, -0.5, 32767 / 32768, -1.0], atol=1e-4)
    assert io.BytesIO(wav_bytes(audio, 22050)).read(4) == b"RIFF"


@pytest.mark.parametrize("given, expected", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\evil.mp4", "evil.mp4"),
    ("/abs/path/clip.mov", "clip.mov"),
    ("héllo wörld (1).mp4", "hello_world_1_.mp4"),
    (".hidden.mp4", "hidden.mp4"),
    ("..", "upload.mp4"),
    ("", "upload.mp4"),
    ("a" * 200 + ".webm", "a" * 70 + ".webm"),
])
def test_upload_names_are_sanitised(given, expected):
    assert safe_name(given) == expected
