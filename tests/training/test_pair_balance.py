"""Mixtures weighted by how hard their pair of labels is: the record, the weights, the loss, resume."""
import pytest
import torch
from torch.utils.data import default_collate

from avsep.config import Config, RunSettings
from avsep.data.index import read_index
from avsep.data.mixtures import MixtureDataset
from avsep.dsp.inputs import mixture_features
from avsep.dsp.masks import loss_weight, mask_loss, target_masks
from avsep.errors import AvsepError
from avsep.models.checkpoint import load_checkpoint
from avsep.models.sop import SoundOfPixels
from avsep.training.pair_balance import PairHardness
from avsep.training.trainer import Trainer, training_loss
from tests.training.test_train import CFG, same_weights, weights


def test_pairs_are_unordered_and_a_mixture_of_three_has_three():
    assert PairHardness.pairs(torch.tensor([[2, 0], [0, 2], [1, 3]])) == [[(0, 2)], [(0, 2)], [(1, 3)]]
    assert PairHardness.pairs(torch.tensor([[3, 1, 2]])) == [[(1, 3), (2, 3), (1, 2)]]


def test_the_record_is_a_plain_mean_at_first_then_a_running_one():
    record = PairHardness(power=1.0, decay=0.5)
    record.update(torch.tensor([[0, 1]]), torch.tensor([1.0]))
    record.update(torch.tensor([[1, 0]]), torch.tensor([3.0]))
    assert record.loss[(0, 1)] == pytest.approx(2.0) and record.seen[(0, 1)] == 2   # mean of the first two
    record.update(torch.tensor([[0, 1]]), torch.tensor([4.0]))
    assert record.loss[(0, 1)] == pytest.approx(3.0)                                # then halfway (decay 0.5)


def test_weights_follow_hardness_and_average_one():
    record = PairHardness(power=1.0)
    record.update(torch.tensor([[0, 1], [2, 3]]), torch.tensor([0.6, 0.2]))
    labels = torch.tensor([[0, 1], [2, 3], [1, 0], [4, 5]])       # the last pair was never seen
    weights = record.weights(labels)
    assert weights.mean().item() == pytest.approx(1.0)
    assert weights[0] == weights[2] and weights[0] / weights[1] == pytest.approx(3.0)
    # An unseen pair weighs as the batch's average mixture before normalisation: (0.6, 0.2, 0.6) average 1.4/3.
    assert weights[3] / weights[1] == pytest.approx((1.4 / 3) / 0.2)
    squared = PairHardness(power=2.0)
    squared.loss, squared.seen = dict(record.loss), dict(record.seen)
    sq = squared.weights(labels[:2])
    assert sq[0] / sq[1] == pytest.approx(9.0)


def test_without_a_record_or_a_power_every_mixture_weighs_one():
    labels = torch.tensor([[0, 1], [2, 3]])
    assert torch.equal(PairHardness(power=1.0).weights(labels), torch.ones(2))
    off = PairHardness(power=0.0)
    off.update(labels, torch.tensor([0.9, 0.1]))
    assert torch.equal(off.weights(labels), torch.ones(2))


def test_the_record_round_trips_through_a_plain_tensor_exactly():
    record = PairHardness(power=1.0)
    record.update(torch.tensor([[0, 1], [2, 1], [0, 1]]), torch.tensor([0.123456789, 0.5, 0.3]))
    state = record.state_dict()
    assert state.dtype == torch.float64 and state.shape == (2, 4)
    again = PairHardness(power=1.0)
    again.load_state_dict(state)
    assert again.loss == record.loss and again.seen == record.seen
    assert PairHardness(power=1.0).state_dict().shape == (0, 4)


def _batch(data, cfg):
    dataset = MixtureDataset(read_index(data / "train.csv"), cfg, train=True, seed=3)
    return default_collate([dataset[i] for i in range(cfg.batch_size)])


def test_the_loss_weighs_each_mixture_by_its_pair_and_records_the_unweighted_losses(tiny_dataset):
    cfg = CFG.replace(pixel_loss=0.0, av_contrast=0.0, pair_balance=1.0, batch_size=6)
    torch.manual_seed(0)
    model = SoundOfPixels(cfg).eval()
    batch = _batch(tiny_dataset, cfg)
    with torch.no_grad():
        features = mixture_features(batch["mix"], cfg, batch["sources"])
        logits = model(features.log_mix_mag, batch["frames"], batch["owner"])
        targets = target_masks(features.source_mags, features.mix_mag, cfg.mask_type)
        bin_weights = loss_weight(features.mix_mag)
        per_item = mask_loss(logits, targets, cfg, bin_weights, per_item=True)
        per_unit = per_item / bin_weights.mean(dim=(1, 2, 3))       # what the record keeps
        plain = training_loss(model, batch, cfg, torch.device("cpu"))
        record = PairHardness(power=1.0)
        # A fresh record knows no pair: every mixture weighs 1, and the batch's losses are recorded.
        assert training_loss(model, batch, cfg, torch.device("cpu"), pair_hardness=record) == pytest.approx(plain.item())
        pairs = [p[0] for p in PairHardness.pairs(batch["labels"])]
        for pair in set(pairs):
            mine = [loss for p, loss in zip(pairs, per_unit.tolist()) if p == pair]
            assert record.loss[pair] == pytest.approx(sum(mine) / len(mine), rel=1e-5)
        # Now one pair is known as three times harder than the others.
        hard = pairs[0]
        record.loss = {p: (3.0 if p == hard else 1.0) for p in record.loss}
        expected = record.weights(batch["labels"])
        assert expected.max() > expected.min()
        weighted = training_loss(model, batch, cfg, torch.device("cpu"), pair_hardness=record)
    assert weighted.item() == pytest.approx((per_item * expected).mean().item(), rel=1e-5)
    assert weighted.item() != pytest.approx(plain.item(), rel=1e-3)


def test_a_balanced_run_resumes_to_the_same_weights_and_record(tiny_dataset, tmp_path):
    cfg = CFG.replace(pair_balance=1.0)

    def trainer(run, resume=None, **settings):
        return Trainer(cfg, tiny_dataset / "train.csv", tiny_dataset / "val.csv", run,
                       RunSettings(workers=0, progress=False, **settings), resume_state=resume)
    trainer(tmp_path / "full").fit()
    trainer(tmp_path / "split", max_steps=6).fit()
    trainer(tmp_path / "split", resume=load_checkpoint(tmp_path / "split/last.pt")).fit()
    full, split = load_checkpoint(tmp_path / "full/last.pt"), load_checkpoint(tmp_path / "split/last.pt")
    assert same_weights(weights(tmp_path / "full/last.pt"), weights(tmp_path / "split/last.pt"))
    assert full["pair_hardness"].shape[0] > 0 and torch.equal(full["pair_hardness"], split["pair_hardness"])
    assert not same_weights(weights(tmp_path / "full/last.pt"), _plain_run(tiny_dataset, tmp_path))


def _plain_run(data, tmp_path):
    Trainer(CFG, data / "train.csv", data / "val.csv", tmp_path / "plain", RunSettings(workers=0, progress=False)).fit()
    return weights(tmp_path / "plain/last.pt")


def test_a_negative_power_and_unweighted_bins_are_refused():
    with pytest.raises(AvsepError, match="pair_balance must be >= 0"):
        Config.preset("small").replace(pair_balance=-1.0)
    with pytest.raises(AvsepError, match="pair_balance .* needs weighted_loss=true"):
        Config.preset("small").replace(pair_balance=1.0, weighted_loss=False)
