"""Run by torchrun from test_distributed.py: do DDP steps on two halves of a batch equal one
process's steps on the whole batch? Writes the largest parameter difference to argv[1].

BatchNorm runs in eval mode here, because in training mode each process normalises with the
statistics of its own half, the one legitimate difference between 1 and W processes.
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


def objective(model, cfg):
    return TrainingObjective(model, lambda m, b: training_loss(m, b, cfg, torch.device("cpu")), torch.device("cpu"))


def main(out: str) -> None:
    ctx = distributed.setup("cpu")
    # No contrastive loss: its negatives are each process's own sources (docs/scaling.md).
    cfg = Config.preset("small").replace(channels=8, resnet_width=8, unet_channels=8, batch_size=4, av_contrast=0.0)
    torch.manual_seed(0)
    model = SoundOfPixels(cfg)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
    reference = copy.deepcopy(model)
    step, optimizer = wrap_objective(objective(model, cfg), ctx, False), make_optimizer(model, cfg)
    ref_step, ref_optimizer = objective(reference, cfg), make_optimizer(reference, cfg)
    generator = torch.Generator().manual_seed(1)
    losses = []
    for _ in range(3):
        sources = torch.randn(4, 2, cfg.audio_len, generator=generator) * 0.1
        batch = {"mix": sources.sum(1), "sources": sources,
                 "frames": torch.randn(4, 2, 3, cfg.num_frames, cfg.img_size, cfg.img_size, generator=generator),
                 "owner": torch.arange(2).view(1, 2, 1, 1).expand(4, 2, cfg.grid_size, cfg.grid_size).clone()}
        half = {k: v[ctx.rank::ctx.world] for k, v in batch.items()}  # rank r: items r, r + W... as in training
        loss, _, _ = ctx.agree(optimizer_step(step, half, optimizer, Precision()), 0.0, False)
        losses.append((loss, optimizer_step(ref_step, batch, ref_optimizer, Precision())))
    diff = max((a - b).abs().max().item() for a, b in zip(model.parameters(), reference.parameters()))
    if ctx.is_main:
        with open(out, "w") as f:
            json.dump({"max_param_diff": diff, "losses": losses}, f)
    distributed.teardown(ctx)


if __name__ == "__main__":
    main(sys.argv[1])
