"""Procedural textures: pictures of the requested size, varied, and reproducible from a seed."""
import numpy as np
import pytest

from avsep.data.textures import PATTERNS, pattern, random_texture


def test_a_texture_is_an_rgb_square_of_the_requested_side():
    image = random_texture(112, np.random.default_rng(0))
    assert image.mode == "RGB" and image.size == (112, 112)


def test_the_same_seed_gives_the_same_texture_and_other_seeds_others():
    first, again = (np.asarray(random_texture(64, np.random.default_rng(3))) for _ in range(2))
    assert (first == again).all()
    others = [np.asarray(random_texture(64, np.random.default_rng(seed))) for seed in range(4, 20)]
    assert all((first != other).any() for other in others)


def test_textures_are_mostly_not_flat_and_span_colours():
    textures = np.stack([np.asarray(random_texture(64, np.random.default_rng(seed)), dtype=np.float32)
                         for seed in range(40)])
    spread = textures.reshape(40, -1, 3).std(axis=1).mean(axis=1)
    assert (spread > 5).mean() > 0.8, "most textures show some structure"
    means = textures.mean(axis=(1, 2))
    assert (means.max(axis=0) - means.min(axis=0) > 80).all(), "their colours vary in every channel"


@pytest.mark.parametrize("kind", PATTERNS)
def test_patterns_lie_in_the_unit_interval_and_vary(kind):
    weights = pattern(48, kind, np.random.default_rng(1))
    assert weights.shape == (48, 48) and weights.min() >= 0 and weights.max() <= 1
    assert weights.std() > 0.05
