"""Index files: the 4-column format, the original 3-column one, path resolution, errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from avsep.errors import AvsepError
from avsep.data.index import IndexRow, frame_path, read_index, write_index


def test_round_trip_with_relative_paths(tmp_path):
    rows = [IndexRow(tmp_path / "audio/cello/a.wav", tmp_path / "frames/cello/a", 80, "cello"),
            IndexRow(tmp_path / "audio/flute, alto/b.wav", tmp_path / "frames/flute, alto/b", 5, "flute, alto")]
    write_index(tmp_path / "train.csv", rows, relative_to=tmp_path)
    text = (tmp_path / "train.csv").read_text()
    assert text.splitlines()[0] == "audio/cello/a.wav,frames/cello/a,80,cello"
    assert str(tmp_path) not in text
    assert read_index(tmp_path / "train.csv") == rows


def test_absolute_paths_are_kept(tmp_path):
    rows = [IndexRow(Path("/data/audio/x/a.wav"), Path("/data/frames/x/a"), 3, "x")]
    write_index(tmp_path / "i.csv", rows)
    assert (tmp_path / "i.csv").read_text() == "/data/audio/x/a.wav,/data/frames/x/a,3,x\n"
    assert read_index(tmp_path / "i.csv") == rows


def test_original_three_column_format_takes_label_from_folder(tmp_path):
    (tmp_path / "train.csv").write_text(
        "./data/audio/acoustic_guitar/M3dekVSwNjY.mp3,./data/frames/acoustic_guitar/M3dekVSwNjY.mp4,1580\n"
        "\n"
        "./data/audio/xylophone/tW2aD9cGmBk.mp3,./data/frames/xylophone/tW2aD9cGmBk.mp4,1200\n")
    rows = read_index(tmp_path / "train.csv")
    assert [r.label for r in rows] == ["acoustic_guitar", "xylophone"]
    assert rows[0].num_frames == 1580
    assert rows[0].audio == tmp_path / "data/audio/acoustic_guitar/M3dekVSwNjY.mp3"
    assert frame_path(rows[0], 0) == tmp_path / "data/frames/acoustic_guitar/M3dekVSwNjY.mp4/000001.jpg"
    assert frame_path(rows[0], 1579).name == "001580.jpg"


def test_relative_paths_fall_back_to_the_current_folder(tmp_path, monkeypatch):
    # The original index files hold paths relative to where its scripts ran, not to the file.
    (tmp_path / "data/audio/cello").mkdir(parents=True)
    (tmp_path / "data/audio/cello/a.wav").write_bytes(b"")
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists/val.csv").write_text("data/audio/cello/a.wav,data/frames/cello/a.mp4,10\n")
    monkeypatch.chdir(tmp_path)
    row = read_index(tmp_path / "lists/val.csv")[0]
    assert row.audio.resolve() == (tmp_path / "data/audio/cello/a.wav").resolve()
    assert row.frames.resolve() == (tmp_path / "data/frames/cello/a.mp4").resolve()
    # When the file exists beside the index, that one wins.
    (tmp_path / "lists/data/audio/cello").mkdir(parents=True)
    (tmp_path / "lists/data/audio/cello/a.wav").write_bytes(b"")
    assert read_index(tmp_path / "lists/val.csv")[0].audio == tmp_path / "lists/data/audio/cello/a.wav"


def test_header_line_is_skipped(tmp_path):
    (tmp_path / "i.csv").write_text("audio,frames,num_frames,label\na.wav,f/a,4,dog\n")
    assert read_index(tmp_path / "i.csv") == [IndexRow(tmp_path / "a.wav", tmp_path / "f/a", 4, "dog")]


@pytest.mark.parametrize("bad_line, message", [
    ("a.wav,f/a", r"line 3: expected AUDIO_PATH,FRAMES_DIR,NUM_FRAMES\[,LABEL\], got 2 column"),
    ("a.wav,f/a,many,dog", "line 3: NUM_FRAMES must be an integer, got 'many'"),
    ("a.wav,f/a,0,dog", "line 3: NUM_FRAMES must be at least 1"),
    ("a.wav,f/a,4,dog,extra", "line 3: expected .* got 5 column"),
    (",f/a,4,dog", "line 3: empty audio path"),
])
def test_malformed_row_names_file_and_line(tmp_path, bad_line, message):
    (tmp_path / "bad.csv").write_text(f"a.wav,f/a,4,dog\nb.wav,f/b,4,cat\n{bad_line}\n")
    with pytest.raises(AvsepError, match=f"bad.csv, {message}"):
        read_index(tmp_path / "bad.csv")


def test_missing_and_empty_index(tmp_path):
    with pytest.raises(AvsepError, match="nope.csv: index file not found"):
        read_index(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("\n\n")
    with pytest.raises(AvsepError, match="empty.csv: index file has no rows"):
        read_index(tmp_path / "empty.csv")


def test_write_index_is_atomic(tmp_path):
    write_index(tmp_path / "sub/i.csv", [IndexRow(tmp_path / "a.wav", tmp_path / "f", 1, "x")], relative_to=tmp_path / "sub")
    assert (tmp_path / "sub/i.csv").read_text() == "../a.wav,../f,1,x\n"
    assert read_index(tmp_path / "sub/i.csv")[0].audio == tmp_path / "a.wav"
    assert not list((tmp_path / "sub").glob(".*"))
