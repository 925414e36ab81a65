"""Stage 2 of the data path: a clip (audio samples and frames) becomes what the networks take.

Training, evaluation and inference all go through this module, so a model sees its inputs the
same way everywhere:

* **Frames** are scaled so that their shorter side is ``img_size``, whatever their aspect.
  Training and evaluation views are squares of that side (crops); inference keeps the whole
  frame, so every pixel of a video of any aspect has a grid cell. Pixels are normalised with
  the ImageNet mean and standard deviation.
* **Loudness.** Each mixture window is scaled to an RMS of ``target_rms`` before its spectrogram
  is taken, and what the model separates is scaled back by the inverse gain, so outputs follow
  the input's level and the U-Net (whose BatchNorm is fixed at inference) always sees the level
  it was trained on.
* **Spectrograms.** The networks see log magnitudes on a warped frequency axis
  (:mod:`avsep.dsp.spectrogram`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from avsep.config import Config
from avsep.dsp.spectrogram import stft, warped_magnitude

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
# A window quieter than target_rms * QUIET_RATIO (-60 dB) is silence: it is not boosted further,
# which would only amplify noise.
QUIET_RATIO = 1e-3


# --- frames -----------------------------------------------------------------------------------

def scaled_size(width: int, height: int, cfg: Config) -> tuple[int, int]:
    """(W, H) of a frame at the model's scale: shorter side ``img_size``, both multiples of the
    visual stride, so that grid cell (i, j) covers exactly ``1/h`` by ``1/w`` of the frame."""
    scale = cfg.img_size / min(width, height)
    stride = cfg.visual_stride
    return (max(stride, round(width * scale / stride) * stride),
            max(stride, round(height * scale / stride) * stride))


def to_model_scale(image: Image.Image, cfg: Config) -> Image.Image:
    """An RGB frame resized to :func:`scaled_size`."""
    image = image.convert("RGB")
    size = scaled_size(image.width, image.height, cfg)
    return image if image.size == size else image.resize(size, Image.BILINEAR)


def centre_square(image: Image.Image, side: int) -> Image.Image:
    """The centred ``side`` x ``side`` crop of an image at least that large."""
    left, top = (image.width - side) // 2, (image.height - side) // 2
    return image.crop((left, top, left + side, top + side))


def normalize_pixels(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (3, H, W), normalised with ImageNet statistics."""
    return ((np.asarray(rgb, dtype=np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)


def denormalize_pixels(array: np.ndarray) -> np.ndarray:
    """Inverse of :func:`normalize_pixels`: float (3, H, W) -> uint8 (H, W, 3)."""
    rgb = np.asarray(array, dtype=np.float32).transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
    return (rgb.clip(0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def frames_tensor(images: Sequence[Image.Image], cfg: Config, square: bool) -> np.ndarray:
    """The frames of one clip as the vision network takes them: (3, T, H, W) float32.

    ``square=True`` gives the centred ``img_size`` square (training and evaluation views);
    ``square=False`` keeps the whole frame at the model's scale (inference).
    """
    views = []
    for image in images:
        scaled = to_model_scale(image, cfg)
        views.append(normalize_pixels(np.asarray(centre_square(scaled, cfg.img_size) if square else scaled)))
    return np.stack(views, axis=1)


def clip_frame_ids(centre_seconds: float, available: int, cfg: Config) -> list[int]:
    """Indices (at ``frame_rate``) of the ``num_frames`` frames shown for a clip centred there,
    ``frame_gap`` apart, clamped to the ``available`` frames."""
    offsets = (np.arange(cfg.num_frames) - (cfg.num_frames - 1) / 2) * cfg.frame_gap
    ids = np.round(centre_seconds * cfg.frame_rate + offsets).astype(int)
    return np.clip(ids, 0, max(0, available - 1)).tolist()


# --- loudness ---------------------------------------------------------------------------------

def loudness_gain(window: np.ndarray | Tensor, cfg: Config) -> float:
    """The gain that brings a mixture window (n,) to an RMS of ``target_rms``.

    Divide what is separated from the scaled window by this gain to return to the input's level.
    """
    values = window.detach().cpu().double().numpy() if isinstance(window, Tensor) else np.asarray(window, np.float64)
    rms = float(np.sqrt(np.mean(np.square(values)))) if values.size else 0.0
    return cfg.target_rms / max(rms, cfg.target_rms * QUIET_RATIO)


# --- spectrograms -----------------------------------------------------------------------------

@dataclass
class MixtureFeatures:
    """Everything the networks and losses need about one batch of mixtures.

    Attributes:
        mix_spec: complex STFT of the mixture, (B, F, T).
        mix_mag: warped mixture magnitude, (B, 1, freq_bins, T).
        source_mags: warped source magnitudes, (B, N, freq_bins, T), or None at inference.
        source_spec: complex STFT of the sources, (B, N, F, T), or None at inference.
    """
    mix_spec: Tensor
    mix_mag: Tensor
    source_mags: Tensor | None = None
    source_spec: Tensor | None = None

    @property
    def log_mix_mag(self) -> Tensor:
        """The U-Net input, log(|mixture| + eps), (B, 1, freq_bins, T)."""
        return torch.log(self.mix_mag + 1e-10)


def mixture_features(mix: Tensor, cfg: Config, sources: Tensor | None = None) -> MixtureFeatures:
    """Spectrogram features of mixtures (B, n), already at ``target_rms``, and optionally of
    their sources (B, N, n)."""
    mix_spec = stft(mix, cfg)
    mix_mag = warped_magnitude(mix_spec, cfg).unsqueeze(1)
    if sources is None:
        return MixtureFeatures(mix_spec=mix_spec, mix_mag=mix_mag)
    batch, num = sources.shape[:2]
    source_spec = stft(sources.reshape(batch * num, -1), cfg).view(batch, num, *mix_spec.shape[1:])
    source_mags = warped_magnitude(source_spec, cfg)
    return MixtureFeatures(mix_spec=mix_spec, mix_mag=mix_mag, source_mags=source_mags, source_spec=source_spec)
