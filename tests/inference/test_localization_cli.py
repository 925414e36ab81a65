"""`avsep evaluate-localization` on generated duets and VGG-SS style boxes, and the one-line
errors of the commands that score or write localizations."""
import json
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from avsep.data.encode import write_mp4

from tests.inference.test_objects import avsep


@pytest.mark.parametrize("weighting", [None, "power"])
def test_duets_are_scored_window_by_window(duet, checkpoint_with_bias, weighting):
    result = avsep("evaluate-localization", "--duets", str(Path(duet["video"]).parent),
                   "--checkpoint", str(checkpoint_with_bias(0.0)), "--json", "--device", "cpu",
                   *([] if weighting is None else ["--map-weighting", weighting]))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["count"] >= 1 and summary["skipped"] == 0 and summary["map_weighting"] == (weighting or "loss")
    assert 0.0 <= summary["pointing"] <= 1.0 and 0.0 <= summary["AUC"] <= 1.0


def test_vggss_entries_with_bad_boxes_or_no_video_are_skipped(duet, checkpoint_with_bias, tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copyfile(duet["video"], videos / "clip1.mp4")
    frames = [np.full((64, 96, 3), 128, np.uint8)] * 24       # 3 s of a grey picture...
    write_mp4(videos / "quiet.mp4", frames, (96, 64), 8.0, np.zeros(3 * 11025, np.float32), 11025, len(frames))
    entries = [{"file": "quiet", "class": "violin", "bbox": [[0.1, 0.1, 0.9, 0.9]]},  # ...and silence: nothing to point at
               {"file": "clip1", "class": "violin", "bbox": [[-0.01, 0.05, 0.4, 1.02]]},   # clipped, as LVS does
               {"file": "clip1", "class": "violin", "bbox": [[0.1, 0.2]]},
               {"file": "clip1", "class": "violin", "bbox": [[0.5, 0.1, 0.2, 0.9]]},
               {"file": "absent", "class": "drum", "bbox": [[0.1, 0.1, 0.2, 0.2]]}]
    (tmp_path / "vggss.json").write_text(json.dumps(entries))
    result = avsep("evaluate-localization", "--vggss", str(tmp_path / "vggss.json"), "--videos", str(videos),
                   "--checkpoint", str(checkpoint_with_bias(0.0)), "--json", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["count"] == 1 and summary["skipped"] == 4
    assert "quiet: silent at its middle" in result.stderr
    assert "clip1: bbox [[0.1, 0.2]] is not a list of [x1, y1, x2, y2] boxes" in result.stderr
    assert "absent: video not found" in result.stderr


@pytest.mark.parametrize("content, message", [('{"duets": [{"video": "a.mp4"}]}', "not a duets.json of `avsep generate duets`"),
                                              (None, "no duets.json (make one with `avsep generate duets`)")])
def test_a_damaged_or_missing_duets_json_is_one_line_before_the_checkpoint_loads(tmp_path, content, message):
    if content is not None:
        (tmp_path / "duets.json").write_text(content)
    result = avsep("evaluate-localization", "--duets", str(tmp_path), "--checkpoint", str(tmp_path / "absent.pt"))
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_an_out_inside_a_file_is_one_line(duet, checkpoint_with_bias, tmp_path):
    (tmp_path / "taken").write_text("a file")
    result = avsep("separate", duet["video"], "--checkpoint", str(checkpoint_with_bias(0.0)),
                   "--out", str(tmp_path / "taken" / "sub"), "--point", "10,10")
    assert result.returncode == 2 and "taken is a file, not a folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", [("separate", "--point", "10,10"), ("localize", "--no-detect")])
def test_an_out_that_is_a_file_is_one_line_before_any_work(duet, checkpoint_with_bias, tmp_path, command):
    taken = tmp_path / "taken"
    taken.write_text("a file")
    result = avsep(command[0], duet["video"], "--checkpoint", str(checkpoint_with_bias(0.0)), "--out", str(taken),
                   *command[1:])
    assert result.returncode == 2 and f"--out {taken}: exists and is not a folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and taken.read_text() == "a file"


def test_localize_a_clip_shorter_than_one_window(duet, checkpoint_with_bias, tmp_path):
    result = avsep("localize", duet["video"], "--checkpoint", str(checkpoint_with_bias(0.0)), "--out", str(tmp_path),
                   "--no-detect", "--json", "--fps", "4", "--duration", "1.5")
    assert result.returncode == 0, result.stderr
    with av.open(json.loads(result.stdout)["heatmap"]) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == pytest.approx(4 * 1.5, abs=1), "the clip's 1.5 s, not less and not the padding"
