"""Training views: crops and jitter keep the size, composed views own their cells."""
import numpy as np
import pytest
from PIL import Image

from avsep.config import Config
from avsep.data.augment import LUMA, SILENT, compose, hue_rotation, jitter, quadrants, ramped, random_view, training_views

CFG = Config.preset("small").replace(crop_scale=0.5, color_jitter=0.4, blur_prob=0.5, cutout_prob=0.5)
COLOURS = {0: (255, 0, 0), 1: (0, 255, 0), SILENT: (0, 0, 255)}


def _clip(colour, frames=1, size=(200, 150)):
    return [Image.new("RGB", size, colour) for _ in range(frames)]


def test_random_view_is_an_img_size_square_for_any_aspect():
    rng = np.random.default_rng(0)
    for size in ((200, 150), (90, 300), (640, 360)):
        view = random_view(_clip((10, 20, 30), frames=3, size=size), CFG, rng)
        assert len(view) == 3 and all(frame.size == (CFG.img_size, CFG.img_size) for frame in view)


def test_composed_view_puts_each_tile_in_its_owners_cells():
    cfg = Config.preset("small")
    rng = np.random.default_rng(1)
    tiles = [(_clip(COLOURS[who], size=(cfg.img_size, cfg.img_size)), who) for who in (0, 1, SILENT, 1)]
    view, owner = compose(tiles, cfg, rng)
    pixels = np.asarray(view[0])
    s = cfg.visual_stride
    for r0, c0, r1, c1 in quadrants(cfg):
        who = owner[r0, c0]
        assert (owner[r0:r1, c0:c1] == who).all()
        centre = pixels[(r0 * s + r1 * s) // 2, (c0 * s + c1 * s) // 2]
        assert tuple(centre) == COLOURS[int(who)], "the quadrant shows its owner's video"
    assert sorted(np.unique(owner).tolist()) == [SILENT, 0, 1]


@pytest.mark.parametrize("compose_prob", [0.0, 1.0])
def test_training_views_owner_maps(compose_prob):
    cfg = CFG.replace(compose_prob=compose_prob)
    rng = np.random.default_rng(2)
    views, owners = training_views([_clip(COLOURS[0]), _clip(COLOURS[1])], [lambda: _clip(COLOURS[SILENT])], cfg, rng)
    assert len(views) == 2 and owners.shape == (2, cfg.grid_size, cfg.grid_size)
    for n in range(2):
        assert (owners[n] == n).any(), "a view always shows its own source"
        if compose_prob == 0:
            assert (owners[n] == n).all()
        else:
            assert len(np.unique(owners[n])) > 1


def test_augmentation_ramp_grows_linearly_to_full_strength():
    cfg = CFG.replace(aug_ramp=100)
    start, half = ramped(cfg, 0), ramped(cfg, 50)
    assert (start.crop_scale, start.color_jitter, start.blur_prob, start.cutout_prob) == (1.0, 0.0, 0.0, 0.0)
    assert half.crop_scale == pytest.approx(0.75) and half.color_jitter == pytest.approx(0.2)
    assert half.blur_prob == pytest.approx(0.25) and half.cutout_prob == pytest.approx(0.25)
    assert ramped(cfg.replace(grey_prob=0.4), 50).grey_prob == pytest.approx(0.2)
    assert ramped(cfg, 100) is cfg and ramped(cfg, 5000) is cfg
    assert ramped(CFG, 0) is CFG, "aug_ramp=0: full strength from the first step"
    assert half.compose_prob == cfg.compose_prob, "composition is a training signal, not ramped"


def test_views_at_the_ramps_start_keep_their_colours():
    """At step 0 no jitter, blur or cutout: a frame of one colour stays that colour."""
    cfg = CFG.replace(aug_ramp=10, compose_prob=0.0)
    colour = (40, 180, 90)
    for seed in range(6):
        views, _ = training_views([_clip(colour)], [], ramped(cfg, 0), np.random.default_rng(seed))
        assert (np.asarray(views[0][0]) == colour).all()
    changed = [training_views([_clip(colour)], [], ramped(cfg, 10), np.random.default_rng(seed))[0][0][0]
               for seed in range(6)]
    assert any((np.asarray(view) != colour).any() for view in changed), "full strength from step aug_ramp"


def test_greyscale_views_lose_their_colours_as_often_as_asked():
    cfg = Config.preset("small").replace(color_jitter=0.0, grey_prob=0.25)
    colour = (200, 40, 40)
    views = [random_view(_clip(colour, frames=2), cfg, np.random.default_rng(seed)) for seed in range(200)]
    grey = [all(len(set(frame.getpixel((5, 5)))) == 1 for frame in view) for view in views]
    assert all(frame.getpixel((5, 5)) == colour for view, g in zip(views, grey) if not g for frame in view)
    assert 0.15 < np.mean(grey) < 0.35, "about a quarter of the views, every frame of a view alike"


def test_no_greyscale_draws_nothing_so_other_runs_keep_their_random_stream():
    def next_number_after_a_view(grey_prob):
        rng = np.random.default_rng(7)
        random_view(_clip((10, 200, 30)), Config.preset("small").replace(grey_prob=grey_prob), rng)
        return rng.random()

    reference = np.random.default_rng(7)
    random_view(_clip((10, 200, 30)), Config.preset("small"), reference)
    draws = [reference.random() for _ in range(2)]
    assert next_number_after_a_view(0.0) == draws[0]
    assert next_number_after_a_view(1.0) == draws[1], "the greyscale coin is one draw, taken only when asked"


def test_random_eq_is_a_gentle_bounded_filter():
    from avsep.data.augment import random_eq

    rng = np.random.default_rng(3)
    noise = rng.standard_normal(32768).astype(np.float32)
    out = random_eq(noise, 11025, 6.0, rng)
    assert out.shape == noise.shape and out.dtype == np.float32
    ratio_db = 20 * np.log10(np.abs(np.fft.rfft(out)[100:]) / np.abs(np.fft.rfft(noise)[100:]))
    assert ratio_db.max() <= 6.0 + 1e-3 and ratio_db.min() >= -6.0 - 1e-3 and np.ptp(ratio_db) > 1.0
    np.testing.assert_allclose(random_eq(noise, 11025, 0.0, rng), noise, atol=1e-5)
    clip = noise[:32767]  # a clip's length (2**k - 1), which the filter pads to a fast FFT size
    np.testing.assert_allclose(random_eq(clip, 11025, 0.0, rng), clip, atol=1e-5)
    shaped = random_eq(clip, 11025, 6.0, rng)
    assert shaped.shape == clip.shape
    clip_db = 20 * np.log10(np.abs(np.fft.rfft(shaped)[100:]) / np.abs(np.fft.rfft(clip)[100:]))
    assert np.percentile(clip_db, 99) <= 6.5 and np.percentile(clip_db, 1) >= -6.5 and np.ptp(clip_db) > 1.0


@pytest.mark.parametrize("texture_prob", [0.0, 1.0])
def test_silent_tiles_show_textures_as_often_as_asked(texture_prob):
    """At texture_prob=1 no silent tile shows the distractor video (blue); at 0 every one does.
    The owner map is the same either way: a texture is silent."""
    cfg = Config.preset("small").replace(compose_prob=1.0, texture_prob=texture_prob, color_jitter=0.0,
                                         crop_scale=1.0, blur_prob=0.0, cutout_prob=0.0)
    s = cfg.visual_stride
    for seed in range(5):
        rng = np.random.default_rng(seed)
        views, owners = training_views([_clip(COLOURS[0]), _clip(COLOURS[1])],
                                       [lambda: _clip(COLOURS[SILENT])] * 3, cfg, rng)
        for view, owner in zip(views, owners):
            pixels = np.asarray(view[0])
            silent = [(r0, c0, r1, c1) for r0, c0, r1, c1 in quadrants(cfg) if owner[r0, c0] == SILENT]
            assert silent, "three of the four tiles are drawn from one mixture video and three silent ones"
            shows_blue = [tuple(pixels[(r0 + r1) * s // 2, (c0 + c1) * s // 2]) == COLOURS[SILENT]
                          for r0, c0, r1, c1 in silent]
            assert not any(shows_blue) if texture_prob else all(shows_blue)


@pytest.mark.parametrize("texture_prob", [0.0, 1.0])
def test_distractor_frames_are_read_only_for_the_tiles_that_show_them(texture_prob):
    """Reading a distractor's frames is much of an item's cost: a tile that becomes a texture
    reads none, and without textures every distractor of a composed item is read once."""
    cfg = Config.preset("small").replace(compose_prob=1.0, texture_prob=texture_prob)
    reads = []

    def reader(k):
        return lambda: reads.append(k) or _clip(COLOURS[SILENT])

    training_views([_clip(COLOURS[0]), _clip(COLOURS[1])], [reader(k) for k in range(3)], cfg,
                   np.random.default_rng(0))
    assert reads == ([] if texture_prob else [0, 1, 2])


def _jitter_step_by_step(image, factors):
    """The definition of :func:`jitter`, one adjustment after the other."""
    rgb = np.asarray(image, dtype=np.float32) * (1.0 + factors[0])
    rgb = (rgb - rgb.mean()) * (1.0 + factors[1]) + rgb.mean()
    grey = (rgb @ LUMA)[..., None]
    rgb = grey + (rgb - grey) * (1.0 + factors[2])
    rgb = rgb @ hue_rotation(factors[3] / 4).T
    return np.clip(rgb, 0, 255).astype(np.uint8)


def test_jitter_in_one_pass_is_the_adjustments_one_after_the_other():
    rng = np.random.default_rng(3)
    for _ in range(20):
        image = Image.fromarray(rng.integers(0, 256, (40, 30, 3)).astype(np.uint8))
        factors = rng.uniform(-0.4, 0.4, 4)
        fused, stepwise = np.asarray(jitter(image, factors)).astype(int), _jitter_step_by_step(image, factors).astype(int)
        assert np.abs(fused - stepwise).max() <= 1, "float rounding may move a level by one, no more"
        assert (fused != stepwise).mean() < 1e-3


def test_jitter_keeps_grey_grey_and_brightness_alone_scales():
    grey = Image.new("RGB", (8, 8), (100, 100, 100))
    turned = np.asarray(jitter(grey, np.array([0.0, 0.0, 0.3, 0.2]))).astype(int)
    assert np.abs(turned - 100).max() <= 1, "saturation and hue keep grey (to the level's float rounding)"
    assert (np.asarray(jitter(grey, np.array([0.2, 0.0, 0.0, 0.0]))) == 120).all()
