"""Stage 2 of the data path: waveforms to spectrograms and back, and the log-frequency warp.

The networks see magnitudes on a log-frequency axis (``freq_bins`` rows, low frequencies first),
because musical structure is roughly uniform in log frequency. Masks predicted on that axis
are warped back to the linear STFT axis before they are applied to the mixture.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from avsep.config import Config

# The base of the original Sound-of-Pixels warp: rows are spaced as base**u, u in [0, 1].
WARP_BASE = 21.0


def _window(cfg: Config, device: torch.device) -> Tensor:
    return torch.hann_window(cfg.stft_frame, device=device)


def stft(audio: Tensor, cfg: Config) -> Tensor:
    """Complex STFT of ``audio`` (B, n) -> (B, F, T), F = stft_frame // 2 + 1, centred frames."""
    return torch.stft(audio, n_fft=cfg.stft_frame, hop_length=cfg.stft_hop, win_length=cfg.stft_frame,
                      window=_window(cfg, audio.device), center=True, return_complex=True)


def istft(spec: Tensor, cfg: Config, length: int) -> Tensor:
    """Inverse of :func:`stft`: complex (B, F, T) -> (B, length)."""
    return torch.istft(spec, n_fft=cfg.stft_frame, hop_length=cfg.stft_hop, win_length=cfg.stft_frame,
                       window=_window(cfg, spec.device), center=True, length=length)


def warp_positions(out_bins: int, in_bins: int, log_freq: bool = True) -> Tensor:
    """Fractional input-row position sampled by each of ``out_bins`` warped rows, shape (out_bins,)."""
    u = torch.linspace(0.0, 1.0, out_bins, dtype=torch.float64)
    if log_freq:
        u = (WARP_BASE ** u - 1.0) / (WARP_BASE - 1.0)
    return (u * (in_bins - 1)).float()


def unwarp_positions(out_bins: int, in_bins: int, log_freq: bool = True) -> Tensor:
    """Inverse map: the fractional warped row of each linear bin, shape (in_bins,)."""
    p = torch.linspace(0.0, 1.0, in_bins, dtype=torch.float64)
    if log_freq:
        p = torch.log1p(p * (WARP_BASE - 1.0)) / math.log(WARP_BASE)
    return (p * (out_bins - 1)).float()


def interp_rows(x: Tensor, positions: Tensor) -> Tensor:
    """Linear interpolation of ``x`` (..., F, T) at fractional rows ``positions`` (R,) -> (..., R, T)."""
    positions = positions.to(x.device)
    low = positions.floor().long().clamp(0, x.shape[-2] - 1)
    high = (low + 1).clamp(max=x.shape[-2] - 1)
    frac = (positions - low.float()).clamp(0.0, 1.0).unsqueeze(-1).to(x.dtype)
    return x.index_select(-2, low) * (1 - frac) + x.index_select(-2, high) * frac


def warp(mag: Tensor, cfg: Config) -> Tensor:
    """Linear-frequency (..., F, T) -> warped (..., freq_bins, T)."""
    return interp_rows(mag, warp_positions(cfg.freq_bins, mag.shape[-2], cfg.log_freq))


def unwarp(warped: Tensor, cfg: Config) -> Tensor:
    """Warped (..., freq_bins, T) -> linear-frequency (..., linear_bins, T)."""
    return interp_rows(warped, unwarp_positions(warped.shape[-2], cfg.linear_bins, cfg.log_freq))


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
    """Spectrogram features of a mixture (B, n) and optionally its sources (B, N, n)."""
    mix_spec = stft(mix, cfg)
    mix_mag = warp(mix_spec.abs(), cfg).unsqueeze(1)
    if sources is None:
        return MixtureFeatures(mix_spec=mix_spec, mix_mag=mix_mag)
    batch, num = sources.shape[:2]
    source_spec = stft(sources.reshape(batch * num, -1), cfg).view(batch, num, *mix_spec.shape[1:])
    source_mags = warp(source_spec.abs(), cfg)
    return MixtureFeatures(mix_spec=mix_spec, mix_mag=mix_mag, source_mags=source_mags, source_spec=source_spec)
