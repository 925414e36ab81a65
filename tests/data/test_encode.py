"""Encoding mp4s: the audio stays whole, however many frames come."""
import av
import numpy as np
import pytest

from avsep.data.decode import load_audio
from avsep.data.encode import write_mp4


@pytest.mark.parametrize("frames_given", [8, 5])
def test_all_audio_is_written_even_when_fewer_frames_come_than_announced(tmp_path, frames_given):
    rate, seconds = 22050, 1.0
    audio = (0.3 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate)).astype(np.float32)
    frames = (np.full((32, 48, 3), 30 * k, np.uint8) for k in range(frames_given))
    path = tmp_path / "clip.mp4"
    write_mp4(path, frames, (48, 32), 8.0, audio, rate, n_frames=8)
    decoded = load_audio(path, rate)
    assert len(decoded) == pytest.approx(len(audio), abs=0.05 * rate), "the whole second of audio, not 5/8 of it"
    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(video=0)) == frames_given
