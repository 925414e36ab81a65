from pathlib import Path

import numpy as np
import pytest
import torch

from avsep.models.checkpoint import load_checkpoint, load_model, save_checkpoint
from avsep.config import Config
from avsep.errors import AvsepError
from avsep.models.sop import SoundOfPixels


def test_checkpoint_is_a_plain_dict_loadable_with_weights_only(tmp_path):
    cfg = Config.preset("small").replace(channels=8)
    model = SoundOfPixels(cfg)
    path = save_checkpoint(tmp_path / "run" / "last.pt", model, cfg, step=7)
    state = torch.load(path, weights_only=True)
    assert state["config"] == cfg.to_dict() and state["step"] == 7
    assert set(state["versions"]) >= {"avsep", "torch", "torchvision"}
    assert all(isinstance(v, torch.Tensor) for v in state["model"].values())
    assert Config.load(tmp_path / "run" / "config.json") == cfg
    assert not list((tmp_path / "run").glob("*.part")), "no temporary file is left behind"


def test_load_model_restores_the_weights(tmp_path):
    cfg = Config.preset("small").replace(channels=8)
    model = SoundOfPixels(cfg)
    with torch.no_grad():
        model.synthesizer.bias.fill_(0.25)
    save_checkpoint(tmp_path / "a.pt", model, cfg)
    loaded, loaded_cfg, _ = load_model(tmp_path / "a.pt")
    assert loaded_cfg == cfg and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])


def test_bad_checkpoints_get_one_line_errors(tmp_path):
    with pytest.raises(AvsepError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    torch.save({"weights": torch.zeros(1000)}, tmp_path / "whole.pt")
    torch.save({"weights": torch.zeros(1000)}, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save({"object": Path("a")}, tmp_path / "pickled.pt")   # a Python object: refused unread
    np.savez(tmp_path / "arrays.npz", weights=np.zeros(3))
    (tmp_path / "cut.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:600])
    (tmp_path / "legacy_cut.pt").write_bytes((tmp_path / "legacy.pt").read_bytes()[:100])
    (tmp_path / "empty.pt").write_bytes(b"")
    damaged = bytearray((tmp_path / "whole.pt").read_bytes())
    damaged[damaged.rfind(b"PK\x01\x02")] = 0   # a byte of the zip's list of files
    (tmp_path / "damaged.pt").write_bytes(bytes(damaged))
    problems = {"junk.pt": "not a PyTorch file", "arrays.npz": "a zip archive, not a PyTorch file",
                "cut.pt": "a PyTorch file that is truncated or damaged",
                "damaged.pt": "a PyTorch file that is truncated or damaged",
                "legacy_cut.pt": "a PyTorch file in the format before torch 1.6, which avsep never writes, and "
                                 "torch cannot read it",
                "empty.pt": "an empty file, from a copy or save that was cut off?",
                "pickled.pt": "it holds Python objects that weights-only loading refuses; avsep never saves them"}
    for name, problem in problems.items():
        with pytest.raises(AvsepError) as error:
            load_checkpoint(tmp_path / name)
        assert str(error.value) == f"{tmp_path / name}: not a readable checkpoint: {problem}"
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(AvsepError, match="not an avsep checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_checkpoints_that_do_not_fit_their_network_get_one_line_errors(tmp_path):
    cfg = Config.preset("small").replace(channels=8)
    save_checkpoint(tmp_path / "a.pt", SoundOfPixels(cfg), cfg)
    state = torch.load(tmp_path / "a.pt", weights_only=True)
    torch.save({**state, "config": cfg.replace(channels=16).to_dict()}, tmp_path / "other_net.pt")
    with pytest.raises(AvsepError, match="other_net.pt: its weights do not fit") as error:
        load_model(tmp_path / "other_net.pt")
    assert "\n" not in str(error.value)
    torch.save({key: value for key, value in state.items() if key != "model"}, tmp_path / "no_model.pt")
    with pytest.raises(AvsepError, match="no_model.pt: a damaged avsep checkpoint \\(no model\\)"):
        load_model(tmp_path / "no_model.pt")
