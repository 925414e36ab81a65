"""Stage 4 of the data path: target masks, losses, and applying masks to the mixture."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from avsep.config import Config
from avsep.dsp.spectrogram import istft, unwarp


def loss_weight(mix_mag: Tensor) -> Tensor:
    """Per-bin loss weight log(1 + |mixture|), clamped as in the paper: (B, 1, F, T)."""
    return torch.log1p(mix_mag).clamp(1e-3, 10.0)


def target_masks(source_mags: Tensor, mix_mag: Tensor, mask_type: str, max_ratio: float = 1.0) -> Tensor:
    """Ground-truth masks for N sources.

    Args:
        source_mags: (B, N, F, T) source magnitudes.
        mix_mag: (B, 1, F, T) mixture magnitude.
        mask_type: ``binary``: 1 where the source is the loudest one (the ideal binary mask);
            ``ratio``: |source| / |mixture|, clamped to [0, max_ratio].
    Returns:
        (B, N, F, T) masks.
    """
    if mask_type == "binary":
        loudest = source_mags.argmax(dim=1, keepdim=True)
        index = torch.arange(source_mags.shape[1], device=source_mags.device).view(1, -1, 1, 1)
        return (loudest == index).to(source_mags.dtype)
    return (source_mags / (mix_mag + 1e-10)).clamp(0.0, max_ratio)


def mask_loss(logits: Tensor, targets: Tensor, cfg: Config, weight: Tensor | None = None) -> Tensor:
    """The training loss between predicted mask logits and target masks, both (B, N, F, T)."""
    if cfg.loss == "bce":
        # BCE on logits is the numerically stable form of BCE after the sigmoid.
        per_bin = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    else:
        pred = {"sigmoid": torch.sigmoid, "relu": torch.relu}.get(cfg.output_activation, lambda x: x)(logits)
        per_bin = (pred - targets).abs() if cfg.loss == "l1" else (pred - targets) ** 2
    if weight is not None and cfg.weighted_loss:
        per_bin = per_bin * weight
    return per_bin.mean()


def masks_to_audio(masks: Tensor, mix_spec: Tensor, cfg: Config, length: int) -> Tensor:
    """Apply warped masks to the mixture STFT and resynthesise with the mixture phase.

    Args:
        masks: (B, N, F, T) masks on the warped frequency axis (after the output activation).
        mix_spec: (B, F_lin, T) complex mixture STFT.
    Returns:
        (B, N, length) waveforms.
    """
    batch, num = masks.shape[:2]
    linear = unwarp(masks, cfg)
    spec = linear * mix_spec.unsqueeze(1)
    return istft(spec.flatten(0, 1), cfg, length).view(batch, num, length)


def ideal_masks(source_specs: Tensor, mix_spec: Tensor, kind: str) -> Tensor:
    """Oracle masks on the linear STFT: ``ibm`` or ``irm``; (B, N, F, T) complex -> (B, N, F, T)."""
    mags = source_specs.abs()
    if kind == "ibm":
        return target_masks(mags, mix_spec.abs().unsqueeze(1), "binary")
    return (mags / (mags.sum(dim=1, keepdim=True) + 1e-10)).clamp(0.0, 1.0)
