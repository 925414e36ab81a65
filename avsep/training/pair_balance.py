"""Weighting mixtures by how hard their pair of labels is (``pair_balance``).

Mix-and-separate draws the pair of labels of each mixture uniformly, but pairs are not equally
hard: two melodic instruments (flute and violin, saxophone and violin) share a register and a
kind of timbre, where a drum and a flute share almost nothing. On the quickstart's data a
trained ``small`` model's mask loss on training mixtures was three times higher for flute +
violin than for drum + flute (docs/training.md, "Pairs weighted by their hardness"), and the
hard pairs were the ones that separated worst on held-out scenes. Uniform training spends most
of its steps where the model already does well.

:class:`PairHardness` keeps a running mean of the pooled mask loss of each pair of labels seen in
training (each mixture's loss per unit of bin weight, its weighted mean BCE, so that loud,
broadband mixtures do not look hard for their loudness alone), and weighs each mixture's losses by
``(its pair's running loss / the batch's mean) ** power``, normalised to a mean of 1 over the
batch, so the loss keeps its scale. With ``power`` 1
this is the gradient of the mean of the pairs' squared losses: it pushes hard pairs down more
than easy ones. Labels are used only as mixing already uses them (which sources are of one
kind); a batch without labels is not weighted.

The state (a few numbers per pair seen) travels in checkpoints as a plain tensor, so a resumed
run weighs its next batch exactly as an uninterrupted one would.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import Tensor

DECAY = 0.98  # the running loss of a pair averages its last ~50 appearances (a pair of 10 appears ~1.6 times a step)


class PairHardness:
    """Running mean loss of each pair of labels, and the weights of a batch's mixtures.

    Args:
        power: the weights' exponent (0: every mixture weighs 1).
        decay: how much of its running loss a pair keeps at each appearance, once it has
            appeared ``1 / (1 - decay)`` times (before that, the plain mean of its appearances).
    """

    def __init__(self, power: float, decay: float = DECAY):
        self.power, self.decay = power, decay
        self.loss: dict[tuple[int, int], float] = {}
        self.seen: dict[tuple[int, int], int] = {}

    @staticmethod
    def pairs(labels: Tensor) -> list[list[tuple[int, int]]]:
        """The unordered pairs of labels of each mixture: labels (B, N) -> B lists of pairs."""
        rows = labels.tolist()
        return [[(min(a, b), max(a, b)) for i, a in enumerate(row) for b in row[i + 1:] if a != b] for row in rows]

    def hardness(self, labels: Tensor) -> Tensor:
        """Each mixture's running loss (the mean of its pairs'; NaN where none was seen): (B, N) -> (B,)."""
        values = [[self.loss[p] for p in pairs if p in self.loss] for pairs in self.pairs(labels)]
        return torch.tensor([sum(v) / len(v) if v else float("nan") for v in values], dtype=torch.float32,
                            device=labels.device)

    def weights(self, labels: Tensor, gather: Optional[Callable[[Tensor], Tensor]] = None) -> Tensor:
        """The weights of a batch's mixtures, mean 1 over the (global) batch: labels (B, N) -> (B,),
        on the labels' device (``gather``, ``DistContext.gather_rows``, joins the ranks' batches).

        A mixture whose pairs were never seen weighs as the batch's average mixture.
        """
        own = self.hardness(labels)
        every = gather(own) if gather is not None else own   # the global batch under DDP
        known = every[~every.isnan()]
        if not self.power or not len(known):
            return torch.ones_like(own)
        mean = known.mean().clamp_min(1e-12)
        relative = lambda h: torch.where(h.isnan(), torch.ones_like(h), h / mean) ** self.power  # noqa: E731
        return relative(own) / relative(every).mean()

    def update(self, labels: Tensor, item_losses: Tensor) -> None:
        """Fold a batch's per-mixture losses (B,) into the running loss of their pairs (in the
        batch's order, so that every process that folds the same batch keeps the same record)."""
        for pairs, loss in zip(self.pairs(labels), item_losses.tolist()):
            for pair in pairs:
                count = self.seen.get(pair, 0) + 1
                rate = max(1.0 - self.decay, 1.0 / count)
                self.loss[pair] = self.loss.get(pair, loss) + rate * (loss - self.loss.get(pair, loss))
                self.seen[pair] = count

    def state_dict(self) -> Tensor:
        """(P, 4) float64 rows of label a, label b, running loss, appearances: a checkpoint's plain tensor."""
        rows = [[a, b, self.loss[(a, b)], self.seen[(a, b)]] for a, b in sorted(self.loss)]
        return torch.tensor(rows, dtype=torch.float64).reshape(-1, 4)

    def load_state_dict(self, state: Tensor) -> None:
        self.loss = {(int(a), int(b)): float(loss) for a, b, loss, _ in state.tolist()}
        self.seen = {(int(a), int(b)): int(seen) for a, b, _, seen in state.tolist()}
