"""Run by torchrun from test_distributed.py: do DDP steps on two halves of a batch equal one
process's steps on the whole batch? Writes to argv[1] the losses of both, each step's largest
gradient difference (relative to the reference gradient's largest value, per parameter tensor)
and the largest parameter difference after the steps.

BatchNorm runs in eval mode here, because in training mode each process normalises with the
statistics of its own half, the one legitimate difference between 1 and W processes. The
contrastive loss is on, its rows gathered across processes as the trainer gathers them; with
``--no-gather`` (argv[2]) each process compares its own half's sources only, which must differ.
"""
import copy
import json
import sys

import torch
from torch import nn

from avsep.config import Config
from avsep.models.sop import SoundOfPixels
from avsep.training import distributed
from avsep.training.engine import Precision, TrainingObjective, optimizer_step, wrap_objective
from avsep.training.trainer import make_optimizer, training_loss


def objective(model, cfg, gather=None):
    return TrainingObjective(model, lambda m, b: training_loss(m, b, cfg, torch.device("cpu"), gather=gather),
                             torch.device("cpu"))


def main(out: str, gather: bool) -> None:
    ctx = distributed.setup("cpu")
    # The contrastive loss at five times the preset's weight, so that negatives taken wrongly show.
    cfg = Config.preset("small").replace(channels=8, resnet_width=8, unet_channels=8, batch_size=4, av_contrast=1.0)
    torch.manual_seed(0)
    model = SoundOfPixels(cfg)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    reference = copy.deepcopy(model)
    step = wrap_objective(objective(model, cfg, ctx.gather_rows if gather else None), ctx, False)
    optimizer = make_optimizer(model, cfg)
    ref_step, ref_optimizer = objective(reference, cfg), make_optimizer(reference, cfg)
    generator = torch.Generator().manual_seed(1)
    losses, grad_diffs = [], []
    seconds = torch.arange(cfg.audio_len) / cfg.sample_rate
    tones = torch.logspace(2.3, 3.5, 8).view(4, 2, 1)  # 200 Hz to 3.2 kHz
    for _ in range(3):
        # A tone per source, so that the sources' audio embeddings differ: on noise alike in every
        # source they nearly coincide, the contrastive loss divides by their tiny spread, and a
        # mere reordering of the batch in one process moves some gradients by several percent.
        sources = 0.1 * torch.sin(2 * torch.pi * tones * seconds) + 0.01 * torch.randn(4, 2, cfg.audio_len, generator=generator)
        batch = {"mix": sources.sum(1), "sources": sources,
                 "frames": torch.randn(4, 2, 3, cfg.num_frames, cfg.img_size, cfg.img_size, generator=generator),
                 "owner": torch.arange(2).view(1, 2, 1, 1).expand(4, 2, cfg.grid_size, cfg.grid_size).clone(),
                 "labels": torch.tensor([[0, 1], [1, 2], [2, 0], [0, 1]])}  # same-label sources are not negatives
        half = {k: v[ctx.rank::ctx.world] for k, v in batch.items()}  # rank r: items r, r + W... as in training
        loss, _, _ = ctx.agree(optimizer_step(step, half, optimizer, Precision()), 0.0, False)
        losses.append((loss, optimizer_step(ref_step, batch, ref_optimizer, Precision())))
        grad_diffs.append(max(((a.grad - b.grad).abs().max() / b.grad.abs().max().clamp_min(1e-12)).item()
                              for a, b in zip(model.parameters(), reference.parameters())))
    diff = max((a - b).abs().max().item() for a, b in zip(model.parameters(), reference.parameters()))
    if ctx.is_main:
        with open(out, "w") as f:
            json.dump({"max_param_diff": diff, "losses": losses, "grad_rel_diffs": grad_diffs}, f)
    distributed.teardown(ctx)


if __name__ == "__main__":
    main(sys.argv[1], gather=sys.argv[2:] != ["--no-gather"])
