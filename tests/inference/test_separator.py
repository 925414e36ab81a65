"""The Separator on generated videos, with models whose masks are known."""
import numpy as np
import pytest
import torch

from avsep.models.checkpoint import save_checkpoint
from avsep.config import Config
from avsep.errors import AvsepError
from avsep.models.sop import SoundOfPixels
from avsep.inference.separator import Box, Point, Separator


@pytest.fixture(scope="module")
def duet(tmp_path_factory):
    from avsep.synth import load_duets, make_duets

    folder = tmp_path_factory.mktemp("duet")
    make_duets(folder, pairs=[("violin", "drum")], count=1, seconds=8.0, seed=3)
    return load_duets(folder)[0]


def separator_with_bias(tmp_path, bias: float) -> Separator:
    """A small model whose masks are sigmoid(bias) everywhere (all weights of the synthesizer zero)."""
    cfg = Config.preset("small")
    model = SoundOfPixels(cfg)
    with torch.no_grad():
        model.synthesizer.scale.zero_()
        model.synthesizer.bias.fill_(bias)
    return Separator(save_checkpoint(tmp_path / "model.pt", model, cfg))


def test_all_pass_masks_give_back_the_mixture_across_clip_boundaries(duet, tmp_path):
    separator = separator_with_bias(tmp_path, 30.0)  # sigmoid(30) = 1: every mask keeps everything
    result = separator.separate(duet["video"], [Box(*duet["sources"][0]["box"]), Point(400, 100)], pool="mean")
    assert len(result.mixture) > 2 * separator.cfg.audio_len  # 8 s: three half-overlapping 3 s clips
    for source in result.sources:
        assert source.shape == result.mixture.shape
        assert np.allclose(source, result.mixture, atol=1e-4)


def test_half_masks_halve_the_mixture(duet, tmp_path):
    separator = separator_with_bias(tmp_path, 0.0)  # sigmoid(0) = 0.5
    result = separator.separate(duet["video"], [Point(10, 10)])
    assert np.allclose(result.sources[0], 0.5 * result.mixture, atol=1e-4)


def test_cells_of_regions(duet, tmp_path):
    separator = separator_with_bias(tmp_path, 0.0)
    video = separator.load_video(duet["video"])
    assert (video.width, video.height) == (512, 256)
    grid = (7, 14)  # 112 x 224 network input for a 2:1 frame
    left = separator.cells(Box(0, 0, 256, 256), grid, video)
    assert left[:, :7].all() and not left[:, 7:].any()
    point = separator.cells(Point(511, 255), grid, video)
    assert point.sum() == 1 and point[6, 13]
    tiny = separator.cells(Box(100, 100, 101, 101), grid, video)  # no cell centre inside: the cell under it
    assert tiny.sum() == 1
    with pytest.raises(AvsepError, match="outside the 512x256 frame"):
        separator.cells(Point(600, 10), grid, video)


def test_localize_shapes(duet, tmp_path):
    separator = separator_with_bias(tmp_path, 30.0)
    loc = separator.localize(duet["video"])
    assert loc.heatmaps.shape == (3, 7, 14) and len(loc.frames) == 3
    assert np.allclose(loc.heatmaps, 1.0, atol=1e-4)  # masks of 1 keep all the energy
    assert np.allclose(loc.times, [0, separator.cfg.audio_len / 11025, 2 * separator.cfg.audio_len / 11025])


def test_heatmap_strip_has_one_panel_per_clip(duet, tmp_path):
    from avsep.inference.separator import heatmap_strip

    separator = separator_with_bias(tmp_path, 0.0)
    loc = separator.localize(duet["video"])
    strip = heatmap_strip(loc, height=100)
    assert strip.size == (3 * 200, 100)  # three 2:1 clips
    assert heatmap_strip(loc, height=100, max_clips=2).size == (2 * 200, 100)
