"""Arrays to images without matplotlib: colormaps, spectrograms, masks and heatmap overlays.

Colormaps are rebuilt from 9 colours sampled evenly from matplotlib's perceptually
uniform maps and interpolated linearly into a 256-entry lookup table; the difference
from the real map is invisible in a report.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from avsep.utils import atomic_path

__all__ = ["CMAPS", "colorize", "heatmap_overlay", "mask_image", "save_png", "spectrogram_image",
           "to_rgb"]

# matplotlib's maps sampled at 0, 1/8, ..., 1 (the common 9-colour "viridis"/"magma" palettes).
CMAPS: dict[str, tuple[str, ...]] = {
    "magma": ("#000004", "#1c1044", "#4f127b", "#812581", "#b5367a",
              "#e55064", "#fb8761", "#fec287", "#fcfdbf"),
    "viridis": ("#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c",
                "#28ae80", "#5ec962", "#addc30", "#fde725"),
}


@lru_cache(maxsize=None)
def _lut(cmap: str) -> np.ndarray:
    """256 x 3 uint8 lookup table interpolated between the colormap's anchor colours."""
    if cmap not in CMAPS:
        raise ValueError(f"unknown colormap {cmap!r}; choose from {sorted(CMAPS)}")
    anchors = np.array([[int(h[i:i + 2], 16) for i in (1, 3, 5)] for h in CMAPS[cmap]], dtype=np.float64)
    where = np.linspace(0.0, 1.0, len(anchors))
    grid = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(grid, where, anchors[:, c]) for c in range(3)], axis=1)
    table = np.round(table).astype(np.uint8)
    table.setflags(write=False)  # shared through the cache
    return table


def colorize(array2d: np.ndarray, cmap: str = "magma", vmin: float | None = None,
             vmax: float | None = None, indexed: bool = False) -> Image.Image:
    """Map a 2-D array to an RGB image through a colormap.

    Args:
        array2d: values, shape (H, W); row 0 becomes the top row of the image.
        cmap: ``"magma"`` or ``"viridis"``.
        vmin, vmax: values mapped to the first / last colour (default: the finite
            min / max). Values outside are clipped; ``nan`` is drawn as ``vmin``.
        indexed: return a palette (mode ``"P"``) image whose palette is the colormap:
            same colours, but PNGs are about 3x smaller and 8x faster to encode.

    Returns:
        ``PIL.Image`` of size (W, H), mode ``"RGB"`` (or ``"P"`` if ``indexed``).
    """
    values = np.asarray(array2d, dtype=np.float32)  # float32 halves the work; ample for 256 levels
    if values.ndim != 2:
        raise ValueError(f"colorize expects a 2-D array, got shape {values.shape}")
    lo, hi = _limits(values, vmin, vmax)
    span = hi - lo if hi > lo else 1.0  # a constant image maps to the first colour
    scaled = (values - np.float32(lo)) * np.float32(255.0 / span)
    scaled[np.isnan(scaled)] = 0.0
    np.clip(scaled, 0.0, 255.0, out=scaled)  # also maps -inf / +inf to the end colours
    index = (scaled + 0.5).astype(np.uint8)  # round half up
    if not indexed:
        return Image.fromarray(_lut(cmap)[index])
    img = Image.fromarray(index)  # mode "L"; putpalette turns it into "P"
    img.putpalette(_lut(cmap).tobytes())
    return img


def _limits(values: np.ndarray, vmin: float | None, vmax: float | None) -> tuple[float, float]:
    """``(vmin, vmax)``, defaulting to the finite min / max of ``values`` (0, 1 if none)."""
    if vmin is not None and vmax is not None:
        return float(vmin), float(vmax)
    finite = values[np.isfinite(values)]
    lo = float(vmin) if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = float(vmax) if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    return lo, hi


def spectrogram_image(mag: np.ndarray, db: bool = True, cmap: str = "magma",
                      top_db: float = 80.0, indexed: bool = False) -> Image.Image:
    """Image of a magnitude spectrogram with low frequencies at the bottom.

    Args:
        mag: non-negative magnitudes, shape (F, T), row 0 = lowest frequency.
        db: show ``20 log10(mag)``, clipped to ``top_db`` below the peak; else linear.
        cmap: colormap name.
        top_db: dynamic range in dB when ``db`` is true.
        indexed: return a palette image (see :func:`colorize`).

    Returns:
        RGB (or palette) ``PIL.Image`` of size (T, F).
    """
    values = np.abs(np.asarray(mag, dtype=np.float32))
    if values.ndim != 2:
        raise ValueError(f"spectrogram_image expects (F, T), got shape {values.shape}")
    vmin = vmax = None
    if db:
        # max() before log10 is cheaper than on the dB values, and gives the same peak.
        peak = float(np.max(values, initial=0.0, where=np.isfinite(values)))
        values = 20.0 * np.log10(np.maximum(values, np.float32(1e-10)))
        vmax = 20.0 * np.log10(max(peak, 1e-10))
        vmin = vmax - top_db
    # Image rows run top to bottom, so flip to put frequency bin 0 on the last row.
    return colorize(values[::-1], cmap=cmap, vmin=vmin, vmax=vmax, indexed=indexed)


def mask_image(mask: np.ndarray, cmap: str = "viridis", indexed: bool = False) -> Image.Image:
    """Image of a time-frequency mask with values in [0, 1], low frequencies at the bottom.

    Args:
        mask: shape (F, T), row 0 = lowest frequency; values outside [0, 1] are clipped.
        cmap: colormap name.
        indexed: return a palette image (see :func:`colorize`).

    Returns:
        RGB (or palette) ``PIL.Image`` of size (T, F).
    """
    values = np.asarray(mask, dtype=np.float32)
    if values.ndim != 2:
        raise ValueError(f"mask_image expects (F, T), got shape {values.shape}")
    return colorize(values[::-1], cmap=cmap, vmin=0.0, vmax=1.0, indexed=indexed)


def to_rgb(frame: Image.Image | np.ndarray) -> Image.Image:
    """A PIL RGB image from a PIL image or an (H, W, 3) / (H, W) uint8 array."""
    if isinstance(frame, Image.Image):
        return frame.convert("RGB")
    array = np.ascontiguousarray(frame)
    if array.dtype != np.uint8:
        raise ValueError(f"frame arrays must be uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[2] == 3:
        return Image.fromarray(array)
    if array.ndim == 2:
        return Image.fromarray(array).convert("RGB")
    raise ValueError(f"frame must be (H, W, 3) or (H, W), got shape {array.shape}")


def heatmap_overlay(frame: Image.Image | np.ndarray, heat: np.ndarray, alpha: float = 0.5,
                    cmap: str = "magma") -> Image.Image:
    """Blend a coarse heatmap (e.g. sound localisation) over a video frame.

    Args:
        frame: ``PIL.Image`` or (H, W, 3) uint8 array.
        heat: values in [0, 1], shape (h, w); bilinearly upsampled to (H, W).
        alpha: weight of the heatmap colour in the blend (0 = frame only).
        cmap: colormap name.

    Returns:
        RGB ``PIL.Image`` of the frame's size.
    """
    base = to_rgb(frame)
    heat = np.ascontiguousarray(heat, dtype=np.float32)
    if heat.ndim != 2:
        raise ValueError(f"heat must be (h, w), got shape {heat.shape}")
    # A float32 array becomes a mode "F" image: float precision through the resampling.
    upsampled = np.asarray(Image.fromarray(heat).resize(base.size, Image.Resampling.BILINEAR))
    coloured = colorize(upsampled, cmap=cmap, vmin=0.0, vmax=1.0)
    return Image.blend(base, coloured, float(np.clip(alpha, 0.0, 1.0)))


def save_png(img: Image.Image, path: str | os.PathLike) -> Path:
    """Write ``img`` as PNG at ``path`` atomically; returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        # Format named explicitly: the temporary file ends in ".part".
        # compress_level 1: several times faster than the default, files barely larger.
        img.save(tmp, format="PNG", compress_level=1)
    return path
