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
])
def test_bad_input_is_one_line_naming_the_argument(tmp_path, argv, named):
    argv = [str(tmp_path / "out") if a == "OUT" else a for a in argv]
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
