"""The Sound-of-Pixels model: the three networks wired together, built from a :class:`Config`."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from avsep.config import Config
from avsep.models.networks import ACTIVATIONS, FrameNet, SoundNet, Synthesizer


def flat_cells(grids: Tensor) -> Tensor:
    """The cells of every view as rows: (B, N, K, h, w) -> (B, C, K), C = N * h * w."""
    return grids.permute(0, 1, 3, 4, 2).reshape(grids.shape[0], -1, grids.shape[2])


def owned_max(values: Tensor, owner: Tensor, num: int) -> Tensor:
    """For each of ``num`` sources, the max over the cells it owns: values (B, C, ...) and
    owner (B, C) (source index, or -1 for none) -> (B, num, ...); -inf where it owns none."""
    owners = owner.reshape(*owner.shape, *[1] * (values.dim() - 2))
    return torch.stack([values.masked_fill(owners != n, -torch.inf).amax(dim=1) for n in range(num)], dim=1)


def owned_mean(values: Tensor, owner: Tensor, num: int) -> Tensor:
    """Like :func:`owned_max`, the mean over the cells each source owns; 0 where it owns none."""
    owners = owner.reshape(*owner.shape, *[1] * (values.dim() - 2))
    means = []
    for n in range(num):
        mine = (owners == n).to(values.dtype)
        means.append((values * mine).sum(dim=1) / mine.sum(dim=1).clamp_min(1.0))
    return torch.stack(means, dim=1)


class SoundOfPixels(nn.Module):
    """Predicts a spectrogram mask for each source of a mixture (pooled) or each pixel of a video.

    Shapes use B batch, N sources per mixture, K channels, F = ``freq_bins`` warped frequency
    rows, T spectrogram frames, h x w the visual grid (14 x 14 for 224 x 224 frames at stride 16),
    C = N * h * w the cells of all the views of a mixture.
    """

    def __init__(self, cfg: Config):
        super().__init__()
        self.cfg = cfg
        self.frame_net = FrameNet(cfg.channels, cfg.resnet_width, cfg.img_activation, cfg.temporal_pool,
                                  cfg.visual_stride, cfg.visual_padding, cfg.resnet_stages, cfg.visual_norm)
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
        """Activated visual vectors per cell, pooled over time: (B, 3, T, H, W) -> (B, K, h, w).

        With ``visual_centred`` the frames are first rolled half a cell up and left: every
        stride-2 layer centres its output i on input 2i, so the network's cell i looks at pixel
        ``i * stride``, the corner of the square that owner maps and regions give it; after the
        roll it looks at the square's centre ``(i + 0.5) * stride``.
        """
        return self.frame_net(self.network_frames(frames))

    def network_frames(self, frames: Tensor) -> Tensor:
        """The frames as the vision network receives them: rolled half a cell up and left with
        ``visual_centred`` (see :meth:`visual_grid`), else unchanged; (B, 3, T, H, W)."""
        if not self.cfg.visual_centred:
            return frames
        half = self.cfg.visual_stride // 2
        return torch.roll(frames, (-half, -half), dims=(-2, -1))

    def fine_visual_grid(self, frames: Tensor) -> Tensor:
        """The visual grid at half the stride: (B, 3, T, H, W) -> (B, K, 2h, 2w).

        The vision network runs on four copies of the frames rolled by a quarter of a cell along
        each axis, and their grids are interleaved. With circular padding the roll wraps nothing
        the network did not already see, and rolling the frame by half a cell shifts this grid by
        exactly one cell. Costs four vision passes.

        Where the cells look: with ``visual_centred`` (see :meth:`visual_grid`) cell i of this
        grid is centred on pixel ``(i + 0.5) * stride / 2``, as the maps assume; without it, one
        fine cell before (docs/separating.md).
        """
        q = self.cfg.visual_stride // 4
        grids = {(dy, dx): self.visual_grid(torch.roll(frames, (dy, dx), dims=(-2, -1)))
                 for dy in (q, -q) for dx in (q, -q)}
        batch, channels, h, w = grids[(q, q)].shape
        fine = grids[(q, q)].new_empty(batch, channels, 2 * h, 2 * w)
        # Rolling by +q moves the picture down/right, so cell i then sees pixels centred q before
        # its own centre: the even rows/columns of the fine grid; rolling by -q the odd ones.
        for (dy, dx), grid in grids.items():
            fine[..., int(dy < 0)::2, int(dx < 0)::2] = grid
        return fine

    def map_grid(self, frames: Tensor) -> Tensor:
        """The grid of the energy maps: :meth:`fine_visual_grid` of the frames and of their mirror
        image (flipped back), averaged: (B, 3, T, H, W) -> (B, K, 2h, 2w).

        Training flips views at random, so both are the network's reading of the same picture; the
        result mirrors exactly with the picture. (Without ``visual_centred`` the mirrored grid's
        cells sit about one fine cell after their assumed centres where the direct grid's sit one
        before, so along the width the mean also spreads each place over two fine cells.) It
        pointed at sounding players as often or more often on each of 7 checkpoints (+2 points on
        average; docs/separating.md). Costs eight vision passes.
        """
        mirrored = self.fine_visual_grid(torch.flip(frames, dims=(-1,))).flip(-1)
        return (self.fine_visual_grid(frames) + mirrored) / 2

    def view_grids(self, frames: Tensor) -> Tensor:
        """The grids of every view of a batch of mixtures: (B, N, 3, T, H, W) -> (B, N, K, h, w)."""
        batch, num = frames.shape[:2]
        grid = self.visual_grid(frames.flatten(0, 1))
        return grid.view(batch, num, *grid.shape[1:])

    def pooled_vectors(self, grids: Tensor, owner: Tensor | None = None) -> Tensor:
        """One visual vector per source: the max over the cells it owns (their mean with
        ``pool="average"``).

        Args:
            grids: (B, N, K, h, w) visual grids of the N views.
            owner: (B, N, h, w) source index of every cell (-1: none); by default view n is
                all source n's, which is the paper's training.
        Returns:
            (B, N, K) vectors.
        """
        average = self.cfg.pool == "average"
        if owner is None:
            return grids.mean(dim=(3, 4)) if average else grids.amax(dim=(3, 4))
        return (owned_mean if average else owned_max)(flat_cells(grids), owner.flatten(1), grids.shape[1])

    def pooled_logits(self, sound: Tensor, grids: Tensor, owner: Tensor | None = None,
                      vectors: Tensor | None = None) -> Tensor:
        """One mask per source from :meth:`pooled_vectors`: (B, K, F, T), (B, N, K, h, w) -> (B, N, F, T)."""
        vectors = self.pooled_vectors(grids, owner) if vectors is None else vectors
        return torch.stack([self.synthesizer(vectors[:, n], sound) for n in range(vectors.shape[1])], dim=1)

    def cell_pooled_logits(self, sound: Tensor, grids: Tensor, owner: Tensor | None = None, chunk: int = 64) -> Tensor:
        """One mask per source: bin by bin, the largest mask logit among the cells it owns.

        This is what the per-pixel loss trains (``pixel_mil="bin"``), where the pooled loss
        trains :meth:`pooled_logits`. Cells are scored ``chunk`` at a time, so memory holds
        (B, chunk, F, T) logits, not all of them.

        Args:
            sound: (B, K, F, T) audio features; grids: (B, N, K, h, w); owner: as in
                :meth:`pooled_vectors` (default: view n is all source n's).
        Returns:
            (B, N, F, T) logits.
        """
        batch, num = grids.shape[:2]
        if owner is None:
            owner = torch.arange(num, device=grids.device).view(1, num, 1, 1).expand(batch, num, *grids.shape[-2:])
        cells, owners = flat_cells(grids), owner.flatten(1)                # (B, C, K), (B, C)
        best = sound.new_full((batch, num, *sound.shape[-2:]), -torch.inf)
        for first in range(0, cells.shape[1], chunk):
            logits = self.synthesizer.per_cell(cells[:, first:first + chunk], sound)   # (B, chunk, F, T)
            best = torch.maximum(best, owned_max(logits, owners[:, first:first + chunk], num))
        return best

    def cell_logits(self, sound: Tensor, grids: Tensor) -> Tensor:
        """The mask logits of every cell of every view: (B, N, K, h, w) -> (B, C, F, T)."""
        return self.synthesizer.per_cell(flat_cells(grids), sound)

    def forward(self, log_mix_mag: Tensor, frames: Tensor, owner: Tensor | None = None) -> Tensor:
        """Mask logits for each of N videos in a mixture (the training and evaluation path).

        Args:
            log_mix_mag: (B, 1, F, T) log magnitude of the mixture.
            frames: (B, N, 3, T_frames, H, W) one view per source.
            owner: (B, N, h, w) optional cell owners (see :meth:`pooled_logits`).
        Returns:
            (B, N, F, T) logits; apply :meth:`activate` for masks. The configuration's ``pool``
            chooses how a video's cells combine: :meth:`pooled_logits` (``vector``: the max of
            their vectors; ``average``: their mean) or :meth:`cell_pooled_logits` (``mask``).
        """
        sound, grids = self.sound_features(log_mix_mag), self.view_grids(frames)
        if self.cfg.pool == "mask":
            return self.cell_pooled_logits(sound, grids, owner)
        return self.pooled_logits(sound, grids, owner)

    def pixel_logits(self, log_mix_mag: Tensor, frames: Tensor) -> Tensor:
        """Mask logits for every pixel of one video: (B, 1, F, T), (B, 3, T_f, H, W) -> (B, h, w, F, T)."""
        return self.synthesizer.per_pixel(self.visual_grid(frames), self.sound_features(log_mix_mag))
