"""Tracked objects: their stems, loudness and sounding decisions, and the CLI commands that write them."""
import json
import subprocess

import av
import numpy as np
import pytest

from avsep.data.decode import read_wav, wav_info
from avsep.evaluation.ensembles import score_clicks, score_pointing
from avsep.inference import Separator
from avsep.inference.detector import Detection
from avsep.inference.objects import describe_objects, detect_objects, object_record
from tests.conftest import PYTHON


class FixedDetector:
    """Reports the duet's two players as tracks 1 and 2 in every frame (what a tracker would)."""

    def __init__(self, duet):
        self.duet = duet

    def track(self, frames):
        frames = list(frames)
        return [[Detection(tuple(s["box"]), 0.9, s["label"], k) for k, s in enumerate(self.duet["sources"], 1)]
                for _ in frames]


def test_objects_get_stems_that_partition_the_mixture(duet, checkpoint_with_bias):
    analysis = Separator.from_checkpoint(checkpoint_with_bias(30.0), device="cpu").analyze(duet["video"], progress=False)
    tracks = detect_objects(analysis, FixedDetector(duet))
    assert sorted(tracks) == [1, 2] and tracks[1].class_name == "violin"
    objects, residual = describe_objects(analysis)
    assert len(objects) == 2
    np.testing.assert_allclose(objects[0]["stem"] + objects[1]["stem"] + residual, analysis.input_mixture, atol=1e-4)
    # All-pass masks shared by two objects: each holds half the sound (-6 dB), so both sound.
    assert all(obj["sounding"] for obj in objects)
    record = object_record(objects[0], "object1.wav")
    assert record["track_id"] == 1 and record["class"] == "violin" and len(record["boxes"][0]) == 5
    json.dumps(record)


def test_a_silent_model_makes_silent_objects(duet, checkpoint_with_bias):
    analysis = Separator.from_checkpoint(checkpoint_with_bias(-30.0), device="cpu").analyze(duet["video"], progress=False)
    detect_objects(analysis, FixedDetector(duet))
    objects, residual = describe_objects(analysis)
    assert not any(obj["sounding"] for obj in objects)
    np.testing.assert_allclose(residual, analysis.input_mixture, atol=1e-4)


def test_a_short_last_stretch_counts_for_its_length_in_the_sounding_share(tmp_path):
    from avsep.inference.analysis import TrackedObject
    from avsep.inference.regions import Box, BoxTrack
    from tests.inference.test_analysis import clip, separator

    video = clip(seconds=1.6)
    video.audio[: int(1.5 * video.sample_rate)] = 0.0          # silent but for the last 0.1 s
    analysis = separator(tmp_path, bias=30.0).analyze(video, progress=False)
    analysis.tracks = {1: TrackedObject(1, "thing", BoxTrack((0.0,), (Box(0, 0, 320, 180),)))}
    (obj,), _ = describe_objects(analysis)
    assert len(obj["loudness"][0]) == 4, "three half seconds and a last tenth"
    # Counted a stretch each, the tenth would be a quarter of the video: "sounding".
    assert obj["sounding_share"] == pytest.approx(0.1 / 1.6, abs=1e-3) and not obj["sounding"]


def test_clicks_and_pointing_are_scored_against_the_stems(duet, checkpoint_with_bias):
    analysis = Separator.from_checkpoint(checkpoint_with_bias(30.0), device="cpu").analyze(duet["video"], progress=False)
    clicks = score_clicks(analysis, duet)
    # All-pass masks give back the mixture: the click scores what the mixture scores.
    np.testing.assert_allclose(clicks["SDR"], clicks["mixture_SDR"], atol=0.2)
    pointing = score_pointing(analysis, duet)
    assert len(pointing["hit"]) >= 2 and all(0 <= c <= 1 for c in pointing["ciou"])
    assert len(pointing["chance"]) == len(pointing["hit"]) and all(0 < c < 1 for c in pointing["chance"])
    width, height = analysis.frame_size
    assert len(pointing["peak"]) == len(pointing["hit"])
    assert all(0 <= row < height and 0 <= col < width for row, col in pointing["peak"])


def avsep(*args, timeout=600):
    return subprocess.run([PYTHON, "-m", "avsep", *args], capture_output=True, text=True, timeout=timeout)


def test_separate_cli_writes_queries_and_residual(duet, checkpoint_with_bias, tmp_path):
    result = avsep("separate", duet["video"], "--checkpoint", str(checkpoint_with_bias(0.0)), "--point", "100,100",
                   "--box", "300,0,512,256", "--out", str(tmp_path), "--json", "--partition")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    files = [q["file"] for q in report["queries"]] + [report["residual"]["file"]]
    assert len(files) == 3 and all(wav_info(f)[0] == report["sample_rate"] for f in files)
    stems = [read_wav(f) for f in files]
    mixture = read_wav(duet["mixture"]) if duet.get("mixture") else None
    total = np.sum(stems, axis=0)
    assert np.abs(total).max() > 0.01 and len(report["queries"][0]["loudness"]["dbfs"]) > 5
    if mixture is not None:
        n = min(len(total), len(mixture))
        assert np.corrcoef(total[:n], mixture[:n])[0, 1] > 0.95, "query stems and residual add up to the mixture"


@pytest.mark.parametrize("extra, message", [
    (["--point", "1,2,3"], "--point '1,2,3': expected 2 comma-separated numbers"),
    (["--point", "9999,1"], "outside the 512x256 frame"),
    (["--box", "10,10,5,20"], "is empty"),
    ([], "give at least one --point"),
])
def test_separate_cli_bad_regions_are_one_line_and_write_nothing(duet, checkpoint_with_bias, tmp_path, extra, message):
    out = tmp_path / "out"
    result = avsep("separate", duet["video"], "--checkpoint", str(checkpoint_with_bias(0.0)), "--out", str(out), *extra)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()


def test_separate_cli_bad_files_are_one_line(duet, checkpoint_with_bias, tmp_path):
    not_ckpt = tmp_path / "x.pt"
    not_ckpt.write_bytes(b"not a checkpoint")
    audio_only = tmp_path / "audio.mp4"
    with av.open(str(audio_only), "w") as out:
        stream = out.add_stream("aac", rate=22050)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 22050), np.float32), format="fltp", layout="mono")
        frame.sample_rate = 22050
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    cases = [([duet["video"], "--checkpoint", str(not_ckpt)], "not a readable checkpoint"),
             ([str(audio_only), "--checkpoint", str(checkpoint_with_bias(0.0))], "no video stream"),
             ([str(tmp_path / "none.mp4"), "--checkpoint", str(checkpoint_with_bias(0.0))], "video not found")]
    for args, message in cases:
        result = avsep("separate", *args, "--point", "1,1", "--out", str(tmp_path / "o"))
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_localize_cli_writes_a_decodable_heatmap_video(duet, checkpoint_with_bias, tmp_path):
    result = avsep("localize", duet["video"], "--checkpoint", str(checkpoint_with_bias(0.0)), "--out", str(tmp_path),
                   "--no-detect", "--json", "--fps", "4")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    with av.open(report["heatmap"]) as container:
        assert container.streams.video and container.streams.audio
        frames = [f for f in container.decode(video=0)]
    assert len(frames) == pytest.approx(4 * 5, abs=2) and frames[0].width == 512
