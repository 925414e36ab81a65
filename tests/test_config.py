import dataclasses
import json
import re
from pathlib import Path

import pytest

from avsep.config import PRESETS, Config
from avsep.errors import AvsepError


def test_sop_preset_is_the_paper_configuration():
    cfg = Config.preset("sop")
    assert (cfg.sample_rate, cfg.audio_len, cfg.stft_frame, cfg.stft_hop) == (11025, 65535, 1022, 256)
    assert (cfg.freq_bins, cfg.time_frames, cfg.num_frames, cfg.img_size, cfg.channels) == (256, 256, 3, 224, 32)
    assert cfg.frame_gap == 24 and cfg.mask_type == "binary" and cfg.loss == "bce" and cfg.weighted_loss
    assert (cfg.lr_frame, cfg.lr_sound, cfg.lr_synth, cfg.num_mix) == (1e-4, 1e-3, 1e-3, 2)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    cfg = Config.preset(name)
    assert Config.from_dict(json.loads(cfg.to_json())) == cfg


def test_overrides_are_typed():
    cfg = Config.preset("small").with_overrides(["unet_levels=6", "log_freq=false", "lr_sound=3e-4", "mask_type=ratio"])
    assert cfg.unet_levels == 6 and cfg.log_freq is False and cfg.lr_sound == 3e-4 and cfg.mask_type == "ratio"


@pytest.mark.parametrize("override, message", [
    ("nope=1", "unknown configuration key 'nope'"),
    ("unet_levels", "expected KEY=VALUE"),
    ("batch_size=big", "expected a int"),
    ("num_mix=5", "num_mix must be"),
    ("unet_levels=4", "unet_levels must be"),
    ("loss=hinge", "loss must be"),
])
def test_bad_overrides_name_the_problem(override, message):
    with pytest.raises(AvsepError, match=message):
        Config.preset("small").with_overrides([override])


def test_keys_of_older_checkpoints_are_ignored_and_unknown_ones_named():
    saved = {**Config.preset("small").to_dict(), "workers": 4, "pair_balance": 1.0}   # a run setting, a removed option
    assert Config.from_dict(saved) == Config.preset("small")
    with pytest.raises(AvsepError, match="unknown configuration key.*: pair_weight"):
        Config.from_dict({**saved, "pair_weight": 1.0})


def test_unknown_preset():
    with pytest.raises(AvsepError, match="unknown preset 'huge'"):
        Config.preset("huge")


def test_default_config_is_the_sop_preset_and_serialises():
    assert Config() == Config.preset("sop")
    assert json.loads(Config().to_json())["preset_name"] == "sop"


def test_every_key_has_a_row_in_docs_config_md():
    doc = (Path(__file__).parents[1] / "docs" / "config.md").read_text()
    rows = set(re.findall(r"^\| `(\w+)` \|", doc, re.M))
    assert [f.name for f in dataclasses.fields(Config) if f.name not in rows] == []
