"""A short generated duet with stems and per-frame boxes, and small checkpoints with known masks."""
import pytest
import torch

from avsep.config import Config
from avsep.models.checkpoint import save_checkpoint
from avsep.models.sop import SoundOfPixels

SMALL = Config.preset("small").replace(channels=8, resnet_width=8, unet_channels=8)


@pytest.fixture(scope="session")
def duet(tmp_path_factory):
    from avsep.synth import load_duets, make_duets

    folder = tmp_path_factory.mktemp("duet")
    make_duets(folder, pairs=[("violin", "drum")], count=1, seconds=5.0, seed=3, pool="test")
    return load_duets(folder)[0]


@pytest.fixture(scope="session")
def checkpoint_with_bias(tmp_path_factory):
    """checkpoint_with_bias(b): a small model whose every mask is sigmoid(b)."""
    folder = tmp_path_factory.mktemp("ckpt")

    def make(bias: float):
        model = SoundOfPixels(SMALL)
        with torch.no_grad():
            model.synthesizer.scale.zero_()
            model.synthesizer.bias.fill_(bias)
        return save_checkpoint(folder / f"bias{bias:g}.pt", model, SMALL)
    return make
