import torch

from avsep.config import Config
from avsep.dsp.masks import ideal_masks, loss_weight, mask_loss, masks_to_audio, target_masks
from avsep.dsp.inputs import mixture_features
from avsep.dsp.spectrogram import stft


def test_binary_targets_pick_the_loudest_source():
    mags = torch.tensor([[1.0, 3.0], [2.0, 1.0], [0.5, 0.1]]).view(1, 3, 1, 2)
    masks = target_masks(mags, mags.sum(1, keepdim=True), "binary")
    assert masks[0, :, 0, 0].tolist() == [0, 1, 0] and masks[0, :, 0, 1].tolist() == [1, 0, 0]
    assert torch.equal(masks.sum(dim=1), torch.ones(1, 1, 2))


def test_ratio_targets_are_clamped():
    mags = torch.tensor([3.0, 1.0]).view(1, 2, 1, 1)
    masks = target_masks(mags, torch.full((1, 1, 1, 1), 2.0), "ratio")
    assert masks.flatten().tolist() == [1.0, 0.5]


def test_weighted_bce_prefers_the_right_mask():
    cfg = Config.preset("small")
    targets = torch.randint(0, 2, (2, 2, 8, 8)).float()
    weight = loss_weight(torch.rand(2, 1, 8, 8) * 10)
    good = mask_loss((targets * 2 - 1) * 5, targets, cfg, weight)
    bad = mask_loss((targets * 2 - 1) * -5, targets, cfg, weight)
    assert good < 0.05 < bad
    for loss in ("l1", "l2"):
        other = cfg.replace(loss=loss, mask_type="ratio")
        assert mask_loss((targets * 2 - 1) * 20, targets, other) < 1e-6


def test_loss_weight_is_clamped_log1p():
    mag = torch.tensor([0.0, 1.0, 1e9]).view(1, 1, 3, 1)
    assert torch.allclose(loss_weight(mag).flatten(), torch.tensor([1e-3, float(torch.log1p(torch.tensor(1.0))), 10.0]))


def test_all_ones_masks_give_back_the_mixture():
    cfg = Config.preset("small")
    mix = torch.randn(2, cfg.audio_len) * 0.1
    features = mixture_features(mix, cfg)
    audio = masks_to_audio(torch.ones(2, 3, cfg.freq_bins, cfg.time_frames), features.mix_spec, cfg, cfg.audio_len)
    assert audio.shape == (2, 3, cfg.audio_len)
    assert torch.allclose(audio[:, 1], mix, atol=1e-5)


def test_ideal_ratio_masks_sum_to_one_and_separate_disjoint_tones():
    cfg = Config.preset("small")
    t = torch.arange(cfg.audio_len) / cfg.sample_rate
    sources = torch.stack([torch.sin(2 * torch.pi * 300 * t), torch.sin(2 * torch.pi * 2500 * t)]).unsqueeze(0)
    mix_spec = stft(sources.sum(1), cfg)
    specs = stft(sources[0], cfg).unsqueeze(0)
    irm = ideal_masks(specs, mix_spec, "irm")
    assert torch.allclose(irm.sum(dim=1), torch.ones_like(irm[:, 0]), atol=1e-4)
    ibm = ideal_masks(specs, mix_spec, "ibm")
    low_bin = round(300 / cfg.sample_rate * cfg.stft_frame)
    assert ibm[0, 0, low_bin].mean() == 1 and ibm[0, 1, low_bin].mean() == 0
