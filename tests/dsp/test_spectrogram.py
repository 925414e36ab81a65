import math

import pytest
import torch

from avsep.config import Config
from avsep.dsp.inputs import mixture_features
from avsep.dsp.spectrogram import istft, stft, unwarp, warp, warp_positions, warped_magnitude


@pytest.mark.parametrize("preset", ["sop", "small"])
def test_stft_round_trip(preset):
    cfg = Config.preset(preset)
    audio = torch.randn(2, cfg.audio_len) * 0.1
    spec = stft(audio, cfg)
    assert spec.shape == (2, cfg.linear_bins, cfg.time_frames)
    assert torch.allclose(istft(spec, cfg, cfg.audio_len), audio, atol=1e-5)


def test_sop_spectrogram_is_256_by_256():
    cfg = Config.preset("sop")
    features = mixture_features(torch.randn(1, cfg.audio_len), cfg, torch.randn(1, 2, cfg.audio_len))
    assert features.mix_spec.shape == (1, 512, 256)
    assert features.mix_mag.shape == (1, 1, 256, 256)
    assert features.source_mags.shape == (1, 2, 256, 256)


@pytest.mark.parametrize("preset,changes", [("sop", {}), ("small", {}), ("small", {"log_freq": False}),
                                            ("small", {"stft_frame": 62, "stft_hop": 16, "warp_base": 5.0})])
def test_warped_magnitude_is_the_warp_of_the_magnitude(preset, changes):
    # It reads only the rows the warp needs: every output row must still match, also where the
    # warp has more rows than the STFT (the last case: 128 warped rows from 32 linear ones).
    cfg = Config.preset(preset).replace(**changes)
    spec = stft(torch.randn(2, 3, cfg.audio_len).flatten(0, 1) * 0.1, cfg).view(2, 3, cfg.linear_bins, -1)
    expected = warp(spec.abs(), cfg)
    assert warped_magnitude(spec, cfg).shape == expected.shape == (2, 3, cfg.freq_bins, cfg.time_frames)
    assert torch.allclose(warped_magnitude(spec, cfg), expected, rtol=1e-5, atol=1e-7)


def test_warp_is_log_spaced_and_monotonic():
    positions = warp_positions(256, 512)
    assert positions[0] == 0 and math.isclose(float(positions[-1]), 511, rel_tol=1e-6)
    steps = positions.diff()
    assert (steps > 0).all()
    # log spacing: the top rows are much further apart than the bottom ones (21x by construction)
    assert 15 < float(steps[-1] / steps[0]) < 25


def test_warp_then_unwarp_error_is_small_for_smooth_spectra():
    cfg = Config.preset("sop")
    freqs = torch.linspace(0, 1, cfg.linear_bins).view(-1, 1)
    smooth = (1.0 + torch.cos(6 * math.pi * freqs) * 0.5) * torch.ones(1, 4)  # (F, T)
    back = unwarp(warp(smooth, cfg), cfg)
    assert back.shape == smooth.shape
    relative = (back - smooth).abs().max() / smooth.abs().max()
    assert relative < 0.02
    # the oversampled low band comes back almost exactly
    assert (back[:100] - smooth[:100]).abs().max() < 1e-3


def test_warp_of_a_constant_is_constant_and_masks_of_one_keep_the_mixture():
    cfg = Config.preset("small")
    ones = torch.ones(3, cfg.freq_bins, 8)
    assert torch.allclose(unwarp(ones, cfg), torch.ones(3, cfg.linear_bins, 8))


def test_linear_warp_when_log_freq_is_off():
    cfg = Config.preset("small").replace(log_freq=False)
    assert torch.allclose(warp_positions(128, 256, log_freq=False).diff(), torch.full((127,), 255 / 127), atol=1e-4)
    ramp = torch.arange(cfg.linear_bins, dtype=torch.float32).view(-1, 1)
    assert torch.allclose(unwarp(warp(ramp, cfg), cfg), ramp, atol=1e-3)
