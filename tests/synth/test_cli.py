"""``avsep generate``: arguments, one-line errors, and the contact sheet."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from avsep.cli import generate
from avsep.errors import AvsepError
from tests.synth.helpers import video_size


def run(*argv: str) -> int:
    # The subcommand's own parser: these tests need only avsep.cli.generate, not every CLI module.
    parser = argparse.ArgumentParser()
    generate.add_arguments(parser)
    return generate.run(parser.parse_args(list(argv)))


@pytest.mark.parametrize("argv, named", [
    (["solo", "OUT", "--labels", "violin", "kazoo"], "--labels 'kazoo'"),
    (["solo", "OUT", "--size", "255x256"], "--size '255x256'"),
    (["solo", "OUT", "--size", "big"], "--size 'big'"),
    (["solo", "OUT", "--pool", "validation"], "--pool 'validation'"),
    (["solo", "OUT", "--per-label", "0"], "--per-label '0'"),
    (["solo", "OUT", "--seconds", "soon"], "--seconds 'soon'"),
    (["solo", "OUT", "--backend", "midi"], "--backend 'midi'"),
    (["duets", "OUT", "--players", "5"], "--players '5'"),
    (["duets", "OUT", "--players", "3", "--labels", "violin", "drum"], "--players '3'"),
    (["duets", "OUT", "--labels", "violin", "kazoo"], "--labels 'kazoo'"),
    (["duets", "OUT", "--pairs", "violin+violin"], "--pairs 'violin+violin'"),
    (["duets", "OUT", "--pairs", "violin+kazoo"], "--pairs 'kazoo'"),
    (["bad", "OUT", "--label", "kazoo"], "--label 'kazoo'"),
    (["solo", "OUT", "--backgrounds", "NOWHERE"], "--backgrounds "),
    (["duets", "OUT", "--pool", "test", "--backgrounds", "EMPTY"], "--backgrounds "),
])
def test_bad_input_is_one_line_naming_the_argument(tmp_path, argv, named):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    places = {"OUT": tmp_path / "out", "NOWHERE": tmp_path / "nowhere", "EMPTY": tmp_path / "empty"}
    argv = [str(places.get(a, a)) for a in argv]
    with pytest.raises(AvsepError) as err:
        run(*argv)
    message = str(err.value)
    assert "\n" not in message and message.startswith(named), message
    assert not (tmp_path / "out").exists()  # nothing generated


def test_cli_solo_test_pool(tmp_path):
    assert run("solo", str(tmp_path), "--labels", "trumpet", "--per-label", "1", "--seconds", "2", "--workers", "1",
               "--size", "160x120", "--pool", "test", "--backend", "numpy") == 0
    (path,) = (tmp_path / "trumpet").glob("*.mp4")
    assert video_size(path) == (160, 120)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["pool"] == "test" and meta["soundfont"] == "numpy"


def test_contact_sheet(tmp_path):
    assert run("sheet", str(tmp_path / "sheet.png")) == 0
    img = np.asarray(Image.open(tmp_path / "sheet.png").convert("RGB"), np.float32)
    assert img.shape[0] > 500 and img.shape[1] > 1500 and img.std() > 30


def test_cli_backgrounds_from_a_folder_of_your_own(tmp_path, monkeypatch):
    from avsep.synth import backgrounds

    folder = tmp_path / "my pictures"
    (folder / "holiday").mkdir(parents=True)
    Image.new("RGB", (400, 300), (200, 30, 180)).save(folder / "holiday" / "beach.jpg")
    monkeypatch.setenv("AVSEP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv(backgrounds.FOLDER_ENV["test"], raising=False)
    used = []
    real_load = backgrounds.load_photo
    monkeypatch.setattr(backgrounds, "load_photo", lambda path: used.append(path) or real_load(path))
    assert run("solo", str(tmp_path / "out"), "--labels", "violin", "--per-label", "2", "--seconds", "1",
               "--workers", "1", "--size", "96x96", "--pool", "test", "--backend", "numpy",
               "--backgrounds", str(folder)) == 0
    assert len(list((tmp_path / "out" / "violin").glob("*.mp4"))) == 2
    assert used and {str(p) for p in used} == {str(folder / "holiday" / "beach.jpg")}
    assert backgrounds.FOLDER_ENV["test"] not in __import__("os").environ  # only for that run
