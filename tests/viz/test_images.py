"""Tests for avsep.images: colormaps, orientation, overlays and PNG writing."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from avsep.viz import images


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


@pytest.mark.parametrize("cmap", ["magma", "viridis"])
def test_colorize_shape_mode_and_endpoints(cmap: str) -> None:
    ramp = np.linspace(0.0, 1.0, 256).reshape(1, 256).repeat(3, axis=0)  # (3, 256)
    img = images.colorize(ramp, cmap=cmap)
    assert img.mode == "RGB" and img.size == (256, 3)
    pixels = np.asarray(img)
    assert tuple(pixels[0, 0]) == _rgb(images.CMAPS[cmap][0])
    assert tuple(pixels[0, -1]) == _rgb(images.CMAPS[cmap][-1])
    assert tuple(pixels[0, 128]) != tuple(pixels[0, 0])


def test_colormap_anchor_values_match_matplotlib() -> None:
    # Known matplotlib values: magma(0) ~ (0, 0, 4), viridis(1) ~ (253, 231, 37).
    assert _rgb(images.CMAPS["magma"][0]) == (0, 0, 4)
    assert _rgb(images.CMAPS["viridis"][-1]) == (253, 231, 37)
    magma = np.asarray(images.colorize(np.linspace(0, 1, 256)[None], cmap="magma"))[0]
    brightness = magma.astype(int).sum(axis=1)
    assert np.all(np.diff(brightness) >= -2)  # perceptually increasing lightness


def test_colorize_vmin_vmax_clip_and_nan() -> None:
    values = np.array([[-5.0, 0.0, 0.5, 1.0, 7.0, np.nan]])
    pixels = np.asarray(images.colorize(values, cmap="viridis", vmin=0.0, vmax=1.0))[0]
    assert tuple(pixels[0]) == tuple(pixels[1]) == tuple(pixels[5])
    assert tuple(pixels[3]) == tuple(pixels[4]) == _rgb(images.CMAPS["viridis"][-1])
    constant = np.asarray(images.colorize(np.full((2, 2), 3.0)))
    assert np.all(constant == constant[0, 0])
    with pytest.raises(ValueError):
        images.colorize(np.zeros((2, 2)), cmap="jet")


def test_spectrogram_low_frequencies_at_bottom() -> None:
    mag = np.full((64, 10), 1e-6)
    mag[:4] = 1.0  # energy only in the lowest bins
    img = images.spectrogram_image(mag)
    assert img.mode == "RGB" and img.size == (10, 64)
    brightness = np.asarray(img).astype(int).sum(axis=2)
    assert brightness[-1].mean() > brightness[0].mean() + 200  # bright bottom row
    linear = np.asarray(images.spectrogram_image(mag, db=False)).astype(int).sum(axis=2)
    assert linear[-1].mean() > linear[0].mean()


def test_mask_image_range_and_orientation() -> None:
    mask = np.zeros((32, 8))
    mask[0] = 1.0  # lowest frequency bin fully on
    pixels = np.asarray(images.mask_image(mask))
    assert pixels.shape == (32, 8, 3)
    assert tuple(pixels[-1, 0]) == _rgb(images.CMAPS["viridis"][-1])
    assert tuple(pixels[0, 0]) == _rgb(images.CMAPS["viridis"][0])


def test_heatmap_overlay_upsamples_and_blends() -> None:
    frame = np.full((48, 64, 3), 100, dtype=np.uint8)
    heat = np.zeros((3, 4))
    heat[0, 0] = 1.0
    out = images.heatmap_overlay(frame, heat, alpha=0.5)
    assert out.mode == "RGB" and out.size == (64, 48)
    pixels = np.asarray(out).astype(int)
    assert pixels[0, 0].sum() > pixels[-1, -1].sum()  # hot corner brighter
    # Bilinear upsampling: a smooth ramp, not a 16x16 block with a hard edge.
    row = pixels[0, :32].sum(axis=1)
    assert len(np.unique(row)) > 4
    same = images.heatmap_overlay(Image.fromarray(frame), heat, alpha=0.0)
    assert np.array_equal(np.asarray(same), frame)


def test_save_png_roundtrip(tmp_path) -> None:
    img = images.colorize(np.arange(12.0).reshape(3, 4))
    path = images.save_png(img, tmp_path / "sub" / "x.png")
    assert path.exists()
    with Image.open(path) as loaded:
        assert loaded.format == "PNG"
        assert np.array_equal(np.asarray(loaded.convert("RGB")), np.asarray(img))
    assert [p.name for p in path.parent.iterdir()] == ["x.png"]  # no leftover temp file
