"""The Sound-of-Pixels model: the three networks wired together, built from a :class:`Config`."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from avsep.config import Config
from avsep.models.networks import ACTIVATIONS, FrameNet, SoundNet, Synthesizer


class SoundOfPixels(nn.Module):
    """Predicts a spectrogram mask for each video (pooled) or for each pixel of a video.

    Shapes use B batch, N sources per mixture, K channels, F = ``freq_bins`` warped frequency
    rows, T spectrogram frames, h x w the visual grid (14 x 14 for 224 x 224 frames).
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.frame_net = FrameNet(cfg.channels, cfg.resnet_width, cfg.img_activation, cfg.temporal_pool)
        self.sound_net = SoundNet(cfg.channels, cfg.unet_levels, cfg.unet_channels, cfg.sound_activation)
        self.synthesizer = Synthesizer(cfg.channels)
        # NHWC weights let oneDNN pick faster convolution kernels: measured 1.3x (small) to 1.6x
        # (sop) faster training steps on a 2-core CPU (docs/benchmarks.md); also a win on GPUs.
        self.to(memory_format=torch.channels_last)

    def parameter_groups(self) -> list[dict]:
        """One optimiser group per network, with the paper's per-network learning rates."""
        cfg = self.cfg
        return [
            {"params": self.frame_net.parameters(), "lr": cfg.lr_frame, "name": "frame"},
            {"params": self.sound_net.parameters(), "lr": cfg.lr_sound, "name": "sound"},
            {"params": self.synthesizer.parameters(), "lr": cfg.lr_synth, "name": "synth"},
        ]

    def activate(self, logits: Tensor) -> Tensor:
        return ACTIVATIONS[self.cfg.output_activation](logits)

    def sound_features(self, log_mix_mag: Tensor) -> Tensor:
        """(B, 1, F, T) -> (B, K, F, T)."""
        return self.sound_net(log_mix_mag)

    def visual_grid(self, frames: Tensor) -> Tensor:
        """Activated visual vectors per pixel: (B, 3, T, H, W) -> (B, K, h, w)."""
        return self.frame_net(frames)

    def visual_vector(self, frames: Tensor) -> Tensor:
        """One vector per video, max-pooled over the grid: (B, 3, T, H, W) -> (B, K)."""
        return self.visual_grid(frames).amax(dim=(2, 3))

    def forward(self, log_mix_mag: Tensor, frames: Tensor) -> Tensor:
        """Mask logits for each of N videos in a mixture (the training path).

        Args:
            log_mix_mag: (B, 1, F, T) log magnitude of the mixture.
            frames: (B, N, 3, T_frames, H, W) frames of each source video.
        Returns:
            (B, N, F, T) logits; apply :meth:`activate` for masks.
        """
        batch, num = frames.shape[:2]
        sound = self.sound_features(log_mix_mag)
        vectors = self.visual_vector(frames.flatten(0, 1)).view(batch, num, -1)
        logits = [self.synthesizer(vectors[:, n], sound) for n in range(num)]
        return torch.stack(logits, dim=1)

    def pixel_logits(self, log_mix_mag: Tensor, frames: Tensor) -> Tensor:
        """Mask logits for every pixel of one video: (B, 1, F, T), (B, 3, T_f, H, W) -> (B, h, w, F, T)."""
        return self.synthesizer.per_pixel(self.visual_grid(frames), self.sound_features(log_mix_mag))
