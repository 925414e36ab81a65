"""The moving average of the weights: its arithmetic, and checkpoints that hold it and resume exactly."""
import pytest
import torch
from torch import nn

from avsep.config import Config, RunSettings
from avsep.errors import AvsepError
from avsep.models.checkpoint import load_checkpoint, load_model
from avsep.training.averaging import WeightAverage, average_decay
from avsep.training.trainer import Trainer
from tests.training.test_train import CFG, same_weights

EMA_CFG = CFG.replace(ema_decay=0.9)


def test_the_decay_ramps_up_to_its_value():
    assert average_decay(0.995, 1) == pytest.approx(2 / 11)
    assert average_decay(0.995, 100) == pytest.approx(101 / 110)
    assert average_decay(0.995, 5000) == 0.995


def test_each_update_moves_the_average_by_one_minus_the_decay_and_copies_counts():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    average = WeightAverage(model, 0.5)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    expected = {k: v.clone() for k, v in start.items()}
    for step in (1, 2, 3):
        with torch.no_grad():
            for param in model.parameters():
                param.add_(step)
        model.train()(torch.randn(4, 3))  # moves BatchNorm's statistics and its count
        decay = average_decay(0.5, step)
        for name, value in model.state_dict().items():
            if value.is_floating_point():
                expected[name] = decay * expected[name] + (1 - decay) * value
        average.update(model, step)
    got = average.model.state_dict()
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(got[name], expected[name], atol=1e-6), name
            assert not torch.allclose(got[name], value), f"{name} is averaged, not copied"
    assert got["1.num_batches_tracked"].item() == 3
    assert not any(p.requires_grad for p in average.model.parameters())


@pytest.mark.parametrize("decay", [0.0, 1.0])
def test_a_decay_outside_the_open_interval_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(nn.Linear(1, 1), decay)


def test_the_configuration_refuses_a_decay_of_one_and_small_averages():
    with pytest.raises(AvsepError, match="ema_decay"):
        Config.preset("small").replace(ema_decay=1.0)
    assert Config.preset("small").ema_decay == 0.995 and Config.preset("sop").ema_decay == 0.0


def fit(data, run, **settings):
    trainer = Trainer(EMA_CFG, data / "train.csv", data / "val.csv", run,
                      RunSettings(workers=0, progress=False, **settings))
    return trainer.fit()


def test_checkpoints_hold_the_average_as_model_and_resume_it_bit_for_bit(tiny_dataset, tmp_path):
    fit(tiny_dataset, tmp_path / "full")
    fit(tiny_dataset, tmp_path / "split", max_steps=6)
    resumed = Trainer(EMA_CFG, tiny_dataset / "train.csv", tiny_dataset / "val.csv", tmp_path / "split",
                      RunSettings(workers=0, progress=False), resume_state=load_checkpoint(tmp_path / "split/last.pt"))
    assert resumed.fit().step == 12
    full, split = load_checkpoint(tmp_path / "full/last.pt"), load_checkpoint(tmp_path / "split/last.pt")
    assert same_weights(full["model"], split["model"])
    assert same_weights(full["training_model"], split["training_model"])
    assert not same_weights(full["model"], full["training_model"]), "the model separating is the average"
    # What separates is the average: every loader of checkpoints rebuilds it.
    model, cfg, _ = load_model(tmp_path / "full/last.pt")
    assert cfg.ema_decay == 0.9
    assert same_weights(model.state_dict(), full["model"])


def test_without_averaging_checkpoints_hold_only_the_trained_model(tiny_dataset, tmp_path):
    trainer = Trainer(CFG.replace(ema_decay=0.0), tiny_dataset / "train.csv", tiny_dataset / "val.csv",
                      tmp_path / "run", RunSettings(workers=0, progress=False, max_steps=4))
    trainer.fit()
    state = load_checkpoint(tmp_path / "run/last.pt")
    assert "training_model" not in state
    assert same_weights(state["model"], trainer.model.state_dict())
