"""An exponential moving average of the weights: the model that validation and checkpoints use.

At a constant learning rate the weights that Adam updates wander around a good region, and the
validation SDR of single snapshots jumps by several dB from one check to the next
(docs/training.md). Their moving average sits nearer the middle of that region: it is what
validation scores, what ``best.pt`` and ``last.pt`` hold as ``model``, and so what every
separation uses. Training itself is unchanged: it keeps updating the raw weights, which
checkpoints also hold (``training_model``) so that a resumed run continues exactly.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def average_decay(decay: float, step: int) -> float:
    """The decay at ``step`` (1 for the first update): ``min(decay, (1 + step) / (10 + step))``.

    The ramp lets the average follow the fast early changes instead of keeping the random
    initialisation for thousands of steps; from about step ``10 / (1 - decay)`` on, it is ``decay``.
    """
    return min(decay, (1.0 + step) / (10.0 + step))


class WeightAverage:
    """A copy of ``model`` whose parameters and BatchNorm statistics follow the model's as
    ``average = decay * average + (1 - decay) * current`` after every training step.

    Args:
        model: the model being trained (not a DDP or compiled wrapper: its own module).
        decay: the moving average's decay per step, in (0, 1); 0.995 averages about the last 200 steps.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"decay {decay}: must be in (0, 1)")
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for param in self.model.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards ``model``'s current weights; ``step`` counts from 1."""
        weight = 1.0 - average_decay(self.decay, step)
        current = model.state_dict()
        for name, average in self.model.state_dict().items():
            if average.is_floating_point():
                average.lerp_(current[name], weight)
            else:  # BatchNorm's num_batches_tracked: a count, not an average
                average.copy_(current[name])
