import pytest
import torch

from avsep.config import Config
from avsep.errors import AvsepError
from avsep.models.sop import SoundOfPixels
from avsep.models.networks import FrameNet, SoundNet, Synthesizer


@pytest.fixture(scope="module")
def sop_model():
    torch.manual_seed(0)
    return SoundOfPixels(Config.preset("sop").replace(imagenet_pretrained=False)).eval()


def test_sop_shapes(sop_model):
    cfg = sop_model.cfg
    frames = torch.randn(1, 2, 3, cfg.num_frames, 224, 224)
    log_mag = torch.randn(1, 1, 256, 256)
    with torch.no_grad():
        assert sop_model.visual_grid(frames[:, 0]).shape == (1, 32, 14, 14)
        assert sop_model(log_mag, frames).shape == (1, 2, 256, 256)
        assert sop_model.pixel_logits(log_mag, frames[:, 0]).shape == (1, 14, 14, 256, 256)


@pytest.mark.parametrize("levels", [5, 6, 7])
def test_unet_levels(levels):
    net = SoundNet(channels=8, levels=levels, base=8).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 1, 128, 128)).shape == (2, 8, 128, 128)
    with pytest.raises(AvsepError, match="divisible"):
        net(torch.randn(1, 1, 128, 100))


def test_frame_net_stride_16_and_width():
    net = FrameNet(channels=5, width=16).eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 2, 224, 160)).shape == (1, 5, 14, 10)
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in FrameNet(5, 64).parameters()) / 10


def test_temporal_max_pool_takes_the_max_over_frames():
    net = FrameNet(channels=4, width=8, activation="none").eval()
    frames = torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        grid = net.grid(frames)
        assert torch.allclose(net(frames), grid.amax(dim=2))


def test_visual_norm_keeps_every_channel_alive():
    torch.manual_seed(0)
    plain, normed = FrameNet(channels=6, width=8), FrameNet(channels=6, width=8, norm="batch")
    assert not list(normed.norm.parameters())  # no learned scale or shift that could saturate again
    with torch.no_grad():
        for net in (plain, normed):  # the same weights, pushed into saturation by the fc bias
            net.load_state_dict(plain.state_dict(), strict=False)
            net.fc.bias.copy_(torch.tensor([-30.0, 30.0, 0.0, 0.0, -8.0, 8.0]))
        for _ in range(40):  # training-mode batches: the running statistics converge
            normed(torch.randn(8, 3, 1, 64, 64))
        views = torch.randn(8, 3, 1, 64, 64)
        pooled_plain = plain(views).amax(dim=(2, 3))  # (videos, K): what a solo video's mask uses
        assert pooled_plain[:, 0].max() < 1e-6 and pooled_plain[:, 1].min() > 1 - 1e-6  # dead: one value for all
        for mode in (normed.train, normed.eval):
            mode()
            pooled = normed(views).amax(dim=(2, 3))
            assert pooled.std(dim=0).min() > 0.01, mode  # every channel differs between videos
    with pytest.raises(AvsepError, match="visual_norm"):
        Config.preset("small").replace(visual_norm="layer").validated()


def test_per_pixel_synthesizer_matches_pooled_one():
    torch.manual_seed(0)
    synth = Synthesizer(6)
    with torch.no_grad():
        synth.scale.uniform_(0.5, 2.0)
        synth.bias.fill_(0.3)
    grid = torch.rand(2, 6, 4, 5)
    sound = torch.randn(2, 6, 16, 8)
    per_pixel = synth.per_pixel(grid, sound)
    assert per_pixel.shape == (2, 4, 5, 16, 8)
    # each pixel's mask is the pooled synthesizer applied to that pixel's vector
    assert torch.allclose(per_pixel[:, 1, 3], synth(grid[:, :, 1, 3], sound), atol=1e-5)
    # linearity: the mean of per-pixel logits is the logits of the mean vector
    assert torch.allclose(per_pixel.mean(dim=(1, 2)), synth(grid.mean(dim=(2, 3)), sound), atol=1e-5)
    # where one pixel holds the max of every channel, max-pooling the vectors picks that pixel
    peaked = grid * 0.1
    peaked[:, :, 2, 2] = 1.0
    assert torch.allclose(synth(peaked.amax(dim=(2, 3)), sound), synth.per_pixel(peaked, sound)[:, 2, 2], atol=1e-5)


def test_model_pixel_masks_max_pool_to_the_training_mask_for_a_uniform_frame():
    torch.manual_seed(0)
    cfg = Config.preset("small")
    model = SoundOfPixels(cfg).eval()
    frames = torch.zeros(1, 1, 3, cfg.num_frames, cfg.img_size, cfg.img_size)  # the same vector at every pixel
    log_mag = torch.randn(1, 1, cfg.freq_bins, cfg.time_frames)
    with torch.no_grad():
        pooled = model(log_mag, frames)[:, 0]
        pixels = model.pixel_logits(log_mag, frames[:, 0])
    interior = pixels[:, 1:-1, 1:-1]  # border cells see zero padding, the interior is uniform
    assert torch.allclose(interior.amax(dim=(1, 2)), interior.amin(dim=(1, 2)), atol=1e-4)
    vectors = model.visual_grid(frames[:, 0])
    assert torch.allclose(pooled, model.synthesizer(vectors.amax(dim=(2, 3)), model.sound_features(log_mag)), atol=1e-5)


def test_imagenet_weights_load_from_the_torch_cache(tmp_path, monkeypatch):
    from torchvision.models import ResNet18_Weights, resnet18

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    reference = resnet18()
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference.state_dict(), cache / ResNet18_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1])
    net = FrameNet(channels=8, width=64)
    assert net.load_imagenet() is True
    assert torch.equal(net.layer3[1].conv2.weight, reference.layer3[1].conv2.weight)
    assert FrameNet(channels=8, width=64, norm="batch").load_imagenet() is True  # the head's norm is not ImageNet's
    assert torch.equal(net.bn1.running_mean, reference.bn1.running_mean)


def test_missing_imagenet_weights_need_random_init(tmp_path, monkeypatch):
    import torch.hub

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    net = FrameNet(channels=8, width=64)
    with pytest.raises(AvsepError, match="random-init"):
        net.load_imagenet()
    before = net.conv1.weight.clone()
    assert net.load_imagenet(allow_random=True) is False
    assert torch.equal(before, net.conv1.weight)


def test_circular_padding_makes_the_grid_shift_with_the_picture():
    """With circular padding no cell can tell where the frame's border is: shifting the picture by
    one cell (16 pixels) shifts the grid by exactly one cell. Zero padding breaks this."""
    torch.manual_seed(0)
    frames = torch.rand(1, 3, 1, 112, 112)
    shifted = torch.roll(frames, shifts=16, dims=-1)
    for padding, equivariant in (("circular", True), ("zeros", False)):
        net = FrameNet(channels=8, width=16, padding=padding).eval()
        with torch.no_grad():
            grid, grid_shifted = net.grid(frames), net.grid(shifted)
        same = torch.allclose(torch.roll(grid, shifts=1, dims=-1), grid_shifted, atol=1e-4)
        assert same == equivariant, padding


def test_wrap_pads_as_torch_circular_padding_does_forward_and_backward():
    import torch.nn.functional as F
    from avsep.models.networks import Conv2d, wrap

    torch.manual_seed(0)
    x = torch.randn(2, 4, 9, 11).to(memory_format=torch.channels_last).requires_grad_(True)
    assert torch.equal(wrap(x, 2, 3), F.pad(x, (3, 3, 2, 2), mode="circular"))
    with pytest.raises(ValueError, match="larger than"):
        wrap(x, 10, 1)
    ours = Conv2d(4, 5, 3, 2, padding=(1, 2), dilation=(1, 2), padding_mode="circular")
    theirs = torch.nn.Conv2d(4, 5, 3, 2, padding=(1, 2), dilation=(1, 2), padding_mode="circular")
    theirs.load_state_dict(ours.state_dict())
    grads = []
    for conv in (ours, theirs):
        out = conv(x)
        (out * torch.arange(out.numel()).view_as(out)).sum().backward()
        grads.append((out.detach(), x.grad.clone(), conv.weight.grad.clone()))
        x.grad = None
    for a, b in zip(*grads):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-4), (a - b).abs().max()


def averaged_gradient(model: SoundOfPixels, grid_of, cell: tuple[int, int], trials: int = 4) -> torch.Tensor:
    """|d cell / d pixels| of a cell of the grid ``grid_of(frames)``, summed over channels and
    random square frames, (size, size), for a ResNet whose convolutions all average their inputs
    (so its receptive field has no direction of its own)."""
    for module in model.frame_net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.constant_(module.weight, 1.0 / module.weight[0].numel())
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
    size = model.cfg.img_size
    weight = torch.zeros(size, size)
    torch.manual_seed(0)
    for _ in range(trials):  # random frames: the max-pool's routing averages out
        frames = torch.rand(1, 3, 1, size, size, requires_grad=True)
        gradient, = torch.autograd.grad(grid_of(frames)[0, :, cell[0], cell[1]].sum(), frames)
        weight += gradient.abs().sum(dim=(0, 1, 2))
    return weight


def receptive_centre(model: SoundOfPixels, grid_of, cell: tuple[int, int]) -> tuple[float, float]:
    """Where a cell of the grid ``grid_of(frames)`` looks, in pixels (row, column): the circular
    centroid of :func:`averaged_gradient`."""
    weight = averaged_gradient(model, grid_of, cell)
    size = model.cfg.img_size
    turn = torch.exp(2j * torch.pi * torch.arange(size) / size)
    return tuple(float(torch.angle((w * turn).sum()) % (2 * torch.pi) * size / (2 * torch.pi))
                 for w in (weight.sum(1), weight.sum(0)))


@pytest.mark.parametrize("centred", [False, True])
def test_visual_centred_puts_each_cells_view_on_the_centre_of_its_square(centred):
    # Activation "none" and no norm: the logits themselves, which the sigmoid would saturate here.
    cfg = Config.from_dict({**Config.preset("small").to_dict(), "img_size": 224, "img_activation": "none",
                            "visual_norm": "none", "visual_centred": centred})
    model = SoundOfPixels(cfg).eval()
    stride = cfg.visual_stride
    for row, col in ((2, 3), (9, 12)):
        seen = receptive_centre(model, model.visual_grid, (row, col))
        # The squares' centres, which owner maps and regions assume; without the roll every
        # stride-2 layer's centring on input 2i leaves the view half a cell before them.
        expected = ((row + 0.5) * stride, (col + 0.5) * stride) if centred else (row * stride, col * stride)
        assert seen == pytest.approx(expected, abs=1.0)
    # The map grids, built from visual_grid, at half the stride: the fine grid one fine cell before
    # without the roll. (The map grid is checked centred only: without the roll its mirrored pass is
    # off the other way, and the mean sits between the two.)
    row, col = 11, 20
    expected = [(i + 0.5) * stride / 2 - (0 if centred else stride / 2) for i in (row, col)]
    for grid_of in (model.fine_visual_grid, model.map_grid) if centred else (model.fine_visual_grid,):
        assert receptive_centre(model, grid_of, (row, col)) == pytest.approx(expected, abs=1.0)


def test_visual_centred_needs_circular_padding():
    with pytest.raises(AvsepError, match="visual_centred needs visual_padding=circular"):
        Config.from_dict({**Config.preset("sop").to_dict(), "visual_centred": True})


def test_the_fine_grid_shifts_by_one_cell_when_the_picture_shifts_by_half_a_cell():
    torch.manual_seed(0)
    model = SoundOfPixels(Config.preset("small").replace(channels=8, resnet_width=8)).eval()
    half = model.cfg.visual_stride // 2
    frames = torch.randn(1, 3, 1, 112, 160)
    with torch.no_grad():
        fine = model.fine_visual_grid(frames)
        moved = model.fine_visual_grid(torch.roll(frames, (half, -half), dims=(-2, -1)))
        coarse = model.visual_grid(frames)
        quarter = model.visual_grid(torch.roll(frames, (half // 2, half // 2), dims=(-2, -1)))
    assert fine.shape == (1, 8, 14, 20) and coarse.shape == (1, 8, 7, 10)
    # The network is equivariant to rolls of whole cells; the fine grid adds half cells.
    torch.testing.assert_close(moved, torch.roll(fine, (1, -1), dims=(-2, -1)), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fine[..., 0::2, 0::2], quarter)
    assert not torch.allclose(fine[..., 1::2, 1::2], coarse, atol=1e-3), "odd cells see other pixels"


def test_the_map_grid_is_the_mean_of_the_picture_and_its_mirror_and_mirrors_with_it():
    torch.manual_seed(0)
    model = SoundOfPixels(Config.preset("small").replace(channels=8, resnet_width=8)).eval()
    frames = torch.rand(1, 3, 1, 112, 160)
    mirrored = torch.flip(frames, dims=(-1,))
    with torch.no_grad():
        grid, grid_of_mirror = model.map_grid(frames), model.map_grid(mirrored)
        fine, fine_of_mirror = model.fine_visual_grid(frames), model.fine_visual_grid(mirrored)
    assert grid.shape == fine.shape == (1, 8, 14, 20)
    torch.testing.assert_close(grid, (fine + fine_of_mirror.flip(-1)) / 2)
    torch.testing.assert_close(grid_of_mirror, grid.flip(-1))
    assert not torch.allclose(fine_of_mirror, fine.flip(-1), atol=1e-3), "one pass alone does not mirror"


@pytest.mark.parametrize("padding", ["reflect", "replicate"])
def test_other_paddings_keep_the_grid_size(padding):
    net = FrameNet(channels=8, width=16, padding=padding).eval()
    assert net(torch.rand(2, 3, 1, 112, 160)).shape == (2, 8, 7, 10)


def test_unknown_visual_padding_is_refused():
    with pytest.raises(AvsepError, match="visual_padding"):
        Config.preset("small").with_overrides(["visual_padding=mirror"])


def test_mask_pooling_is_each_bins_largest_cell_mask_of_the_cells_a_source_owns():
    torch.manual_seed(0)
    model = SoundOfPixels(Config.preset("small")).eval()
    sound, grids = torch.randn(2, 16, 8, 8), torch.rand(2, 2, 16, 7, 7)
    owner = torch.randint(-1, 2, (2, 2, 7, 7))
    owner[:, 0, 0, 0], owner[:, 1, 0, 0] = 0, 1  # every source owns a cell
    cells = model.cell_logits(sound, grids)                                     # (B, C, F, T)
    owners = owner.reshape(2, -1, 1, 1)
    brute = torch.stack([cells.masked_fill(owners != n, -torch.inf).amax(1) for n in range(2)], 1)
    assert torch.allclose(model.cell_pooled_logits(sound, grids, owner, chunk=5), brute)  # chunks do not matter
    # By default view n is all source n's: each source's mask is the max over its own view's cells.
    own_view = torch.stack([model.cell_logits(sound, grids[:, n:n + 1]).amax(1) for n in range(2)], 1)
    assert torch.allclose(model.cell_pooled_logits(sound, grids), own_view)


def test_the_configured_pool_decides_how_the_forward_pools_a_videos_cells():
    torch.manual_seed(0)
    cfg = Config.preset("small")
    log_mag, frames = torch.rand(1, 1, cfg.freq_bins, cfg.time_frames), torch.rand(1, 2, 3, 1, 112, 112)
    vector_model = SoundOfPixels(cfg).eval()
    mask_model = SoundOfPixels(cfg.replace(pool="mask")).eval()
    mask_model.load_state_dict(vector_model.state_dict())
    with torch.no_grad():
        sound, grids = vector_model.sound_features(log_mag), vector_model.view_grids(frames)
        assert torch.allclose(vector_model(log_mag, frames), vector_model.pooled_logits(sound, grids), atol=1e-5)
        assert torch.allclose(mask_model(log_mag, frames), vector_model.cell_pooled_logits(sound, grids), atol=1e-5)
    average_model = SoundOfPixels(cfg.replace(pool="average")).eval()
    average_model.load_state_dict(vector_model.state_dict())
    with torch.no_grad():
        # The synthesizer is linear in the vector: averaging vectors averages every cell's logits.
        mean_logits = torch.stack([vector_model.cell_logits(sound, grids[:, n:n + 1]).mean(1) for n in range(2)], 1)
        assert torch.allclose(average_model(log_mag, frames), mean_logits, atol=1e-5)
    with pytest.raises(AvsepError, match="pool must be vector, average or mask"):
        cfg.replace(pool="mean")


def test_average_pooling_means_the_cells_each_source_owns():
    from avsep.models.sop import owned_mean

    values = torch.randn(2, 5, 3)
    owner = torch.tensor([[0, 0, 1, -1, 1], [1, 1, 1, 1, -1]])
    means = owned_mean(values, owner, 2)
    assert torch.allclose(means[0, 0], values[0, :2].mean(0)) and torch.allclose(means[0, 1], values[0, [2, 4]].mean(0))
    assert torch.allclose(means[1, 1], values[1, :4].mean(0)) and torch.equal(means[1, 0], torch.zeros(3))
    model = SoundOfPixels(Config.preset("small").replace(pool="average"))
    grids = torch.rand(1, 2, 16, 7, 7)
    owner = torch.arange(2).view(1, 2, 1, 1).expand(1, 2, 7, 7)
    assert torch.allclose(model.pooled_vectors(grids, owner), model.pooled_vectors(grids), atol=1e-6)


def test_fewer_resnet_stages_keep_torchvision_names_and_end_at_their_stride():
    four = FrameNet(channels=8, width=16, stride=8, padding="circular")
    two = FrameNet(channels=8, width=16, stride=8, padding="circular", stages=2)
    assert two(torch.rand(1, 3, 1, 64, 64)).shape == (1, 8, 8, 8)
    kept = {k for k in two.state_dict() if not k.startswith("fc.")}
    assert kept and kept < set(four.state_dict()) and not any(k.startswith(("layer3", "layer4")) for k in kept)
    three = FrameNet(channels=8, width=16, stride=16, stages=3)
    assert three(torch.rand(1, 3, 1, 64, 64)).shape == (1, 8, 4, 4)
    with pytest.raises(AvsepError, match="2 at stride 8"):
        FrameNet(stride=16, stages=2)
    with pytest.raises(AvsepError, match="resnet_stages"):
        Config.preset("small").replace(resnet_stages=2)


def test_imagenet_weights_load_into_the_stages_that_run(monkeypatch):
    from torchvision.models import ResNet18_Weights

    full = FrameNet(channels=8, width=64)
    state = {k: v.clone() for k, v in full.state_dict().items() if not k.startswith("fc.")}
    monkeypatch.setattr(ResNet18_Weights.IMAGENET1K_V1, "get_state_dict", lambda **kw: state, raising=False)
    three = FrameNet(channels=8, width=64, stages=3)
    assert three.load_imagenet()
    assert torch.equal(three.layer3[0].conv1.weight, full.layer3[0].conv1.weight)


def gradient_share_near(model: SoundOfPixels, cell: tuple[int, int], radius: float) -> float:
    """The share of a cell's :func:`averaged_gradient` that lies within ``radius`` pixels (circular,
    along each axis) of the centre of its square."""
    weight = averaged_gradient(model, model.visual_grid, cell)
    size, stride = model.cfg.img_size, model.cfg.visual_stride
    pixels = torch.arange(size) + 0.5
    distances = [(pixels - (i + 0.5) * stride).abs().remainder(size) for i in cell]
    near = [torch.minimum(d, size - d) <= radius for d in distances]
    return float(weight[near[0][:, None] & near[1][None, :]].sum() / weight.sum())


def test_three_resnet_stages_keep_more_of_a_cells_view_near_its_square():
    # What `resnet_stages` is for: a cell that sees less of the frame around it describes its own
    # place (docs/training.md, "Cells that see less around them"; benchmarks/probe_receptive_field.py
    # measures trained models).
    shares = {}
    for stages in (3, 4):
        cfg = Config.from_dict({**Config.preset("small").to_dict(), "img_size": 224, "img_activation": "none",
                                "visual_norm": "none", "resnet_stages": stages})
        shares[stages] = gradient_share_near(SoundOfPixels(cfg).eval(), (6, 7), radius=1.5 * cfg.visual_stride)
    assert shares[3] > shares[4] + 0.1, shares
