"""Stage 4 of the data path: target masks, losses, and applying masks to the mixture."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from avsep.config import Config
from avsep.dsp.spectrogram import istft, unwarp
from avsep.models.networks import ACTIVATIONS
from avsep.models.sop import owned_max


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
        # argmax over the sources, written as a running comparison: torch's argmax along a
        # middle dimension is slow on a CPU (18 ms against 1.8 ms for a (16, 2, 128, 128) batch on
        # 2 cores: benchmarks/bench_step_costs.py). Ties go to the first source, as with argmax.
        loudest = torch.zeros_like(source_mags[:, :1], dtype=torch.long)
        best = source_mags[:, :1]
        for n in range(1, source_mags.shape[1]):
            louder = source_mags[:, n:n + 1] > best
            best = torch.where(louder, source_mags[:, n:n + 1], best)
            loudest = loudest.masked_fill(louder, n)
        index = torch.arange(source_mags.shape[1], device=source_mags.device).view(1, -1, 1, 1)
        return (loudest == index).to(source_mags.dtype)
    return (source_mags / (mix_mag + 1e-10)).clamp(0.0, max_ratio)


def _per_bin_loss(logits: Tensor, targets: Tensor, cfg: Config) -> Tensor:
    if cfg.loss == "bce":
        # BCE on logits is the numerically stable form of BCE after the sigmoid.
        return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    pred = {"sigmoid": torch.sigmoid, "relu": torch.relu}.get(cfg.output_activation, lambda x: x)(logits)
    return (pred - targets).abs() if cfg.loss == "l1" else (pred - targets) ** 2


def _weighted_loss(logits: Tensor, targets: Tensor, cfg: Config, weight: Tensor | None) -> Tensor:
    """The per-bin loss, times the bin weights where the configuration weights the loss."""
    per_bin = _per_bin_loss(logits, targets, cfg)
    return per_bin * weight if weight is not None and cfg.weighted_loss else per_bin


def mask_loss(logits: Tensor, targets: Tensor, cfg: Config, weight: Tensor | None = None,
              per_item: bool = False) -> Tensor:
    """The training loss between predicted mask logits and target masks, both (B, N, F, T): a
    scalar, or with ``per_item`` each mixture's (B,), whose mean is that scalar."""
    per_bin = _weighted_loss(logits, targets, cfg, weight)
    return per_bin.mean(dim=tuple(range(1, per_bin.dim()))) if per_item else per_bin.mean()


def pixel_loss(cell_logits: Tensor, owner: Tensor, targets: Tensor, cfg: Config, weight: Tensor | None = None,
               sparsity: float = 0.0) -> Tensor:
    """The per-pixel (multiple-instance) loss: the cells of each source explain its sound, and
    cells of videos that are not in the mixture stay silent.

    With ``pixel_mil="bin"``, for source n the mask of bin (f, t) is the largest mask among the
    cells that show n: some cell of the video must explain each of its bins, and none may claim
    bins it does not own. With ``pixel_mil="cell"``, the one cell of n that explains all of n's
    bins best is trained on them (see :func:`_best_cell_loss`).
    Cells owned by no source (-1, a silent distractor video) are pushed to an all-zero mask.

    Args:
        cell_logits: (B, C, F, T) logits of every cell of every view (C = N * h * w).
        owner: (B, N, h, w) the source each cell shows, or -1.
        targets: (B, N, F, T) target masks.
        weight: (B, 1, F, T) per-bin weights, or None.
        sparsity: weight of :func:`sparsity_loss` (the trainer's ``sparsity_weight`` at each
            step: 0 until ``cfg.sparsity_start`` and the gate, then ``cfg.pixel_sparsity``).
    """
    batch, cells = cell_logits.shape[:2]
    if cfg.pixel_mil == "cell":
        loss = _best_cell_loss(cell_logits, owner.reshape(batch, cells), targets, cfg, weight)
    else:
        strongest = owned_max(cell_logits, owner.reshape(batch, cells), targets.shape[1])
        loss = mask_loss(strongest, targets, cfg, weight)
    silent = owner.reshape(batch, cells) < 0
    if silent.any():
        quiet, quiet_weight = cell_logits[silent], None if weight is None else weight[silent.nonzero()[:, 0], 0]
        loss = loss + _weighted_loss(quiet, torch.zeros_like(quiet), cfg, quiet_weight).mean()
    if sparsity:
        loss = loss + sparsity * sparsity_loss(cell_logits, owner.reshape(batch, cells), cfg, weight)
    return loss


def sparsity_loss(cell_logits: Tensor, owner: Tensor, cfg: Config, weight: Tensor | None = None) -> Tensor:
    """The mean share of the sound that the cells of sounding videos keep (their energy map's mean).

    The bin-wise max of :func:`pixel_loss` asks *some* cell of a video to explain each bin and
    leaves the others free, so the background around an instrument may keep its sound too and
    the energy map spreads over the whole video. This small push towards silence, shared by all
    the cells of a sounding video, lets only the cells that explain the sound best keep it.

    Args:
        cell_logits: (B, C, F, T); owner: (B, C) source of each cell or -1 (not counted);
        weight: (B, 1, F, T) per-bin weights, or None.
    Returns:
        A scalar in [0, 1]: the weighted mean mask over the bins of every owned cell.
    """
    masks = ACTIVATIONS[cfg.output_activation](cell_logits)
    if weight is None or not cfg.weighted_loss:
        weight = torch.ones_like(cell_logits[:, :1])
    kept = (masks * weight).sum(dim=(2, 3)) / weight.sum(dim=(2, 3)).clamp_min(1e-12)     # (B, C)
    owned = (owner >= 0).to(kept.dtype)
    return (kept * owned).sum() / owned.sum().clamp_min(1.0)


def _best_cell_loss(cell_logits: Tensor, owner: Tensor, targets: Tensor, cfg: Config, weight: Tensor | None) -> Tensor:
    """For each source, the mask loss of the one cell among those showing it that explains it best.

    This trains what a click uses: a single cell's vector must give the whole mask of the source
    it shows. (The bin-wise maximum may let one cell explain the low notes and another the high
    ones, so that no single cell gives the whole sound.)

    Args:
        cell_logits: (B, C, F, T); owner: (B, C) source of each cell or -1; targets: (B, N, F, T);
        weight: (B, 1, F, T) or None.
    """
    losses = []
    for n in range(targets.shape[1]):
        per_bin = _weighted_loss(cell_logits, targets[:, n:n + 1].expand_as(cell_logits), cfg, weight)
        per_cell = per_bin.mean(dim=(2, 3)).masked_fill(owner != n, torch.inf)     # (B, C)
        losses.append(per_cell.amin(dim=1))
    return torch.stack(losses, dim=1).mean()


def contrast_loss(vectors: Tensor, sound: Tensor, targets: Tensor, weight: Tensor, scale: Tensor,
                  *, labels: Tensor | None = None, temperature: float = 0.1,
                  gather: Callable[[Tensor], Tensor] | None = None) -> Tensor:
    """Audio-visual correspondence across the batch: each source's visual vector must be closer to
    the audio features of its own bins than to those of every other source of the batch.

    The audio embedding of a source is the U-Net's features averaged over the bins where it is the
    loudest (its target mask), weighted like the mask loss. Positives are a video and its own
    sound; negatives are the other sources of the batch, except those of the same label when
    ``labels`` are given: a second violin is not a wrong answer for a violin, and counting it as
    one would teach the vision network to tell videos apart (their backgrounds) instead of
    instruments. Labels are used only as mixing uses them, to say which sources are of one kind.
    This gives the vision network a signal from the first step, where the mask loss alone leaves
    both sources' masks at 0.5 until vision and audio have found each other.

    Args:
        vectors: (B, N, K) pooled visual vectors; sound: (B, K, F, T) audio features;
        targets: (B, N, F, T) target masks; weight: (B, 1, F, T); scale: (K,) synthesizer scale;
        labels: (B, N) label ids, or None (every other source is a negative).
        gather: joins the rows of a tensor across the processes of a distributed job
            (``DistContext.gather_rows``), so that with several processes the negatives are the
            sources of the whole global batch, as in one process; None: this batch only.
    """
    mass = targets * weight
    audio = torch.einsum("bnft,bkft->bnk", mass, sound) / mass.sum(dim=(2, 3)).clamp_min(1e-6)[..., None]
    visual = vectors.flatten(0, 1) * scale
    audio = audio.flatten(0, 1)
    if gather is not None:
        visual, audio = gather(visual), gather(audio)
        labels = gather(labels) if labels is not None else None
    visual = F.normalize(visual - visual.mean(dim=0, keepdim=True), dim=-1)
    audio = F.normalize(audio - audio.mean(dim=0, keepdim=True), dim=-1)
    logits = visual @ audio.T / temperature
    if labels is not None:
        kinds = labels.flatten()
        same_kind = (kinds[:, None] == kinds[None, :]) & ~torch.eye(len(kinds), dtype=torch.bool, device=kinds.device)
        logits = logits.masked_fill(same_kind, -torch.inf)
    own = torch.arange(len(logits), device=logits.device)
    return (F.cross_entropy(logits, own) + F.cross_entropy(logits.T, own)) / 2


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
