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

# The base of the original Sound-of-Pixels warp (rows spaced as base**u, u in [0, 1]); a
# checkpoint carries its own in ``Config.warp_base``.
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


def warp_positions(out_bins: int, in_bins: int, log_freq: bool = True, base: float = WARP_BASE) -> Tensor:
    """Fractional input-row position sampled by each of ``out_bins`` warped rows, shape (out_bins,)."""
    u = torch.linspace(0.0, 1.0, out_bins, dtype=torch.float64)
    if log_freq:
        u = (base ** u - 1.0) / (base - 1.0)
    return (u * (in_bins - 1)).float()


def unwarp_positions(out_bins: int, in_bins: int, log_freq: bool = True, base: float = WARP_BASE) -> Tensor:
    """Inverse map: the fractional warped row of each linear bin, shape (in_bins,)."""
    p = torch.linspace(0.0, 1.0, in_bins, dtype=torch.float64)
    if log_freq:
        p = torch.log1p(p * (base - 1.0)) / math.log(base)
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
    return interp_rows(mag, warp_positions(cfg.freq_bins, mag.shape[-2], cfg.log_freq, cfg.warp_base))


def warped_magnitude(spec: Tensor, cfg: Config) -> Tensor:
    """``warp(spec.abs(), cfg)`` for a complex STFT (..., F, T), computed only on the linear rows
    that the warp reads (214 of 512 at the `small` preset's sizes, 337 at `sop`'s) and as
    sqrt(re^2 + im^2), which is faster on a CPU than torch's complex ``abs``; -> (..., freq_bins, T).
    For features only: unlike ``abs``, its gradient is not finite where a bin is exactly 0."""
    positions = warp_positions(cfg.freq_bins, spec.shape[-2], cfg.log_freq, cfg.warp_base).to(spec.device)
    low = positions.floor().long().clamp(0, spec.shape[-2] - 1)
    rows = torch.unique(torch.cat([low, (low + 1).clamp(max=spec.shape[-2] - 1)]))   # sorted
    # Each row's low neighbour and the one after it are both kept and adjacent in ``rows``,
    # so the fractional positions carry over to the gathered rows unchanged but for the offset.
    kept = torch.searchsorted(rows, low).to(positions.dtype) + (positions - low.to(positions.dtype))
    mag = torch.view_as_real(spec.index_select(-2, rows)).square().sum(-1).sqrt()
    return interp_rows(mag, kept)


def unwarp(warped: Tensor, cfg: Config) -> Tensor:
    """Warped (..., freq_bins, T) -> linear-frequency (..., linear_bins, T)."""
    return interp_rows(warped, unwarp_positions(warped.shape[-2], cfg.linear_bins, cfg.log_freq, cfg.warp_base))
