import pytest
import torch

from avsep.config import Config
from avsep.errors import AvsepError
from avsep.dsp.masks import contrast_loss, ideal_masks, loss_weight, mask_loss, masks_to_audio, target_masks
from avsep.dsp.inputs import mixture_features
from avsep.dsp.spectrogram import stft


def test_binary_targets_pick_the_loudest_source():
    mags = torch.tensor([[1.0, 3.0], [2.0, 1.0], [0.5, 0.1]]).view(1, 3, 1, 2)
    masks = target_masks(mags, mags.sum(1, keepdim=True), "binary")
    assert masks[0, :, 0, 0].tolist() == [0, 1, 0] and masks[0, :, 0, 1].tolist() == [1, 0, 0]
    assert torch.equal(masks.sum(dim=1), torch.ones(1, 1, 2))


@pytest.mark.parametrize("num", [2, 3, 4])
def test_binary_targets_match_argmax_ties_included(num):
    mags = torch.rand(3, num, 5, 7)
    mags[0, :, 0, 0] = 0.5        # an exact tie: argmax (and the ideal binary mask) takes the first
    mags[1, :, 2, 3] = 0.0        # silence in every source, likewise
    expected = torch.nn.functional.one_hot(mags.argmax(dim=1), num).permute(0, 3, 1, 2).float()
    assert torch.equal(target_masks(mags, mags.sum(1, keepdim=True), "binary"), expected)


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


def test_per_item_mask_losses_are_each_mixtures_own_and_average_to_the_batch_loss():
    torch.manual_seed(0)
    cfg = Config.preset("small")
    targets = torch.randint(0, 2, (3, 2, 8, 8)).float()
    weight = loss_weight(torch.rand(3, 1, 8, 8) * 10)
    logits = torch.randn(3, 2, 8, 8)
    logits[1] = (targets[1] * 2 - 1) * 5                 # mixture 1 predicted right
    per_item = mask_loss(logits, targets, cfg, weight, per_item=True)
    assert per_item.shape == (3,) and per_item.mean() == pytest.approx(mask_loss(logits, targets, cfg, weight).item())
    assert per_item[1] == pytest.approx(mask_loss(logits[1:2], targets[1:2], cfg, weight[1:2]).item())
    assert per_item[1] < 0.05 < min(per_item[0], per_item[2])


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


def _contrast_case(matched: bool):
    """Four sources in two mixtures; each source's sound lives on its own feature channel, and its
    visual vector points at that channel (matched) or at another source's (mismatched)."""
    torch.manual_seed(0)
    batch, num, k, f, t = 2, 2, 4, 8, 6
    targets = torch.zeros(batch, num, f, t)
    targets[:, 0, : f // 2], targets[:, 1, f // 2:] = 1.0, 1.0
    sound = torch.zeros(batch, k, f, t)
    for b in range(batch):
        for n in range(num):
            sound[b, 2 * b + n] += targets[b, n] * 5.0
    order = [0, 1, 2, 3] if matched else [1, 0, 3, 2]
    vectors = torch.eye(k)[order].view(batch, num, k)
    return vectors, sound, targets, torch.ones(batch, 1, f, t), torch.ones(k)


def test_contrast_loss_is_low_when_each_video_matches_its_own_sound():
    matched = contrast_loss(*_contrast_case(True))
    swapped = contrast_loss(*_contrast_case(False))
    assert matched < 0.1 < swapped
    # the loss is symmetric cross-entropy over 4 candidates: chance level is log(4)
    assert swapped > torch.log(torch.tensor(4.0))


def test_contrast_loss_gives_gradients_to_both_networks():
    vectors, sound, targets, weight, scale = _contrast_case(False)
    vectors.requires_grad_(True)
    sound.requires_grad_(True)
    contrast_loss(vectors, sound, targets, weight, scale).backward()
    assert vectors.grad.abs().sum() > 0 and sound.grad.abs().sum() > 0


def test_contrast_loss_does_not_count_a_source_of_the_same_label_as_a_wrong_answer():
    # Sources 0 and 2 are of one kind (two violins): they look alike and sound alike, which is
    # right, so with their labels the loss is as low as for four distinct instruments, and
    # without them the look-alike counts against both.
    vectors, sound, targets, weight, scale = _contrast_case(True)
    vectors[1, 0] = vectors[0, 0]
    sound[1, 0], sound[1, 2] = sound[1, 2], 0.0     # source (1, 0)'s sound moves to source (0, 0)'s channel
    labels = torch.tensor([[0, 1], [0, 2]])
    distinct = contrast_loss(*_contrast_case(True))
    with_labels = contrast_loss(vectors, sound, targets, weight, scale, labels=labels)
    without = contrast_loss(vectors, sound, targets, weight, scale)
    assert with_labels < 0.1 < without
    assert with_labels == pytest.approx(float(distinct), abs=1e-3)


def _split_sources():
    """Two sources, one cell each in view 0/1, whose targets each cover half of the bins."""
    targets = torch.zeros(1, 2, 4, 4)
    targets[0, 0, :2], targets[0, 1, 2:] = 1.0, 1.0
    owner = torch.tensor([0, 0, 1, 1]).view(1, 2, 1, 2)
    return targets, owner


def test_bin_mil_lets_two_cells_share_a_source_but_cell_mil_does_not():
    from avsep.dsp.masks import pixel_loss

    cfg = Config.preset("small").replace(pixel_loss=1.0)
    targets, owner = _split_sources()
    # Source 0's two cells each explain half of its bins (the low and the high ones): the
    # bin-wise maximum is perfect, but no single cell gives the whole mask.
    halves = torch.full((1, 4, 4, 4), -10.0)
    halves[0, 0, :1], halves[0, 1, 1:2] = 10.0, 10.0
    halves[0, 3, 2:] = 10.0
    whole = halves.clone()
    whole[0, 0, :2] = 10.0
    assert pixel_loss(halves, owner, targets, cfg) < 1e-3
    cell = cfg.replace(pixel_mil="cell")
    assert pixel_loss(halves, owner, targets, cell) > 1.0
    assert pixel_loss(whole, owner, targets, cell) < 1e-3


def test_cell_mil_trains_only_the_best_cell_of_each_source():
    from avsep.dsp.masks import pixel_loss

    cfg = Config.preset("small").replace(pixel_loss=1.0, pixel_mil="cell")
    targets, owner = _split_sources()
    logits = torch.randn(1, 4, 4, 4)
    logits[0, 1] = (targets[0, 0] * 2 - 1) * 3     # cell 1 is source 0's best
    logits.requires_grad_(True)
    pixel_loss(logits, owner, targets, cfg).backward()
    touched = logits.grad.abs().sum(dim=(2, 3))[0] > 0
    assert touched[1] and not touched[0]
    assert int(touched[2:].sum()) == 1              # one cell of source 1


def test_sparsity_is_the_mean_share_kept_by_the_cells_of_sounding_videos():
    from avsep.dsp.masks import sparsity_loss

    cfg = Config.preset("small")
    owner = torch.tensor([[0, 0, 1, -1]])
    logits = torch.full((1, 4, 4, 4), -30.0)
    logits[0, 0] = 30.0                        # keeps everything
    logits[0, 1, :2] = 30.0                    # keeps the two low rows, where the weight is 3 times higher
    logits[0, 3] = 0.0                         # a silent distractor's cell: not counted here
    logits.requires_grad_(True)
    weight = torch.ones(1, 1, 4, 4)
    weight[..., :2, :] = 3.0
    loss = sparsity_loss(logits, owner, cfg, weight)
    assert abs(loss.item() - (1 + 0.75 + 0) / 3) < 1e-6   # weighted shares kept: 1, 3/4 and 0
    loss.backward()
    assert logits.grad[0, 3].abs().sum() == 0      # at 0 its sigmoid has slope 1/4: not counted, so no gradient
    assert Config.preset("small").replace(pixel_sparsity=0.0, sparsity_start=0, loss="l1", output_activation="none")
    with pytest.raises(AvsepError, match="pixel_sparsity needs bounded masks"):
        Config.preset("small").replace(pixel_sparsity=1.0, loss="l1", output_activation="none")


def test_sparsity_adds_to_the_pixel_loss_with_the_weight_given():
    from avsep.dsp.masks import pixel_loss, sparsity_loss

    targets, owner = _split_sources()
    logits = torch.randn(1, 4, 4, 4)
    cfg = Config.preset("small")
    plain = pixel_loss(logits, owner, targets, cfg)
    # The weight is the caller's (the trainer's, step by step), never the configuration's.
    assert cfg.pixel_sparsity > 0 and torch.equal(pixel_loss(logits, owner, targets, cfg, sparsity=0.0), plain)
    extra = pixel_loss(logits, owner, targets, cfg, sparsity=0.5) - plain
    assert torch.isclose(extra, 0.5 * sparsity_loss(logits, owner.flatten(1), cfg))
