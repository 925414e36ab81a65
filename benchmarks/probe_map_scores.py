"""Does the energy map's reduction decide where it points? Rescore one model's maps, reduced other ways.

    python benchmarks/probe_map_scores.py --checkpoint RUN/best.pt --duets WORKDIR/duets

An energy map turns every cell's mask (over the bins of a second of the mixture around a time)
into one number: the share of the mixture that the mask keeps, each bin weighted. The vision
network and the masks stay as they are here (each duet is analysed once); only that reduction
changes:

* ``power`` (:meth:`Analysis.energy_map` with ``weighting="power"``, the default until this
  probe): sum(m |X|^2) / sum(|X|^2);
* ``magnitude``, ``log``, ``uniform``: the same share with the weights |X|, log(1 + |X|) (the
  training loss's weight, ``loss_weight``; ``weighting="loss"``, the default now) or 1, so that
  quiet bins count more, relative to loud ones, than under power;
* ``argmax``: every bin's power credited to the one cell whose mask logit is largest there, as the
  per-pixel loss pools cells (``pixel_mil="bin"``);
* ``softmax``: every bin's power shared between the cells by a softmax of their logits;
* ``claimed``: every bin's power shared in proportion to the cells' masks, so bins that every cell
  keeps count for none in particular;
* ``log_claimed``: ``claimed`` with the loss's weights;
* ``clip``, ``log_clip``, ``log_2s``: ``power`` or ``log`` over the whole window (``audio_len``:
  about 3 s at the ``small`` preset when this probe was run, 1.5 s since) or two seconds, not one;
* ``library``: :meth:`Analysis.energy_map` itself, with its default weighting (a check: the
  same as ``log``).

Prints pointing, median-threshold cIoU and size-matched cIoU of each (``score_pointing``), on the
same windows. About a minute for 48 duets on 2 cores at the ``small`` preset.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.dsp.masks import loss_weight  # noqa: E402
from avsep.dsp.spectrogram import warped_magnitude  # noqa: E402
from avsep.evaluation.ensembles import score_pointing  # noqa: E402
from avsep.inference.analysis import upsample  # noqa: E402
from avsep.synth import load_duets  # noqa: E402
from probe_map_variants import duet_probe  # noqa: E402

# (logits (h, w, F, T), masks: the logits activated, magnitude (F, T)) -> (h, w)
Reduction = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def weighted_share(weight_of: Callable[[torch.Tensor], torch.Tensor]) -> Reduction:
    def reduce(logits: torch.Tensor, masks: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
        weight = weight_of(magnitude)
        return (masks * weight).sum(dim=(-2, -1)) / weight.sum().clamp_min(1e-12)
    return reduce


def shared_by(split: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
              weight_of: Callable[[torch.Tensor], torch.Tensor] = lambda m: m ** 2) -> Reduction:
    """Each bin's weight (default: power) split between the cells by ``split`` of their
    (cells, F, T) logits and masks."""
    def reduce(logits: torch.Tensor, masks: torch.Tensor, magnitude: torch.Tensor) -> torch.Tensor:
        h, w = logits.shape[:2]
        parts = split(logits.reshape(h * w, *logits.shape[2:]), masks.reshape(h * w, *masks.shape[2:]))
        weight = weight_of(magnitude)
        return ((parts * weight).sum(dim=(-2, -1)) / weight.sum().clamp_min(1e-12)).reshape(h, w)
    return reduce


def argmax_split(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(logits).scatter_(0, logits.argmax(0, keepdim=True), 1.0)


def softmax_split(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return torch.softmax(logits, dim=0)


def claimed_split(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return masks / masks.sum(0, keepdim=True).clamp_min(1e-12)


REDUCTIONS: dict[str, Reduction] = {
    "power": weighted_share(lambda m: m ** 2),
    "magnitude": weighted_share(lambda m: m),
    "log": weighted_share(loss_weight),
    "uniform": weighted_share(torch.ones_like),
    "argmax": shared_by(argmax_split),
    "softmax": shared_by(softmax_split),
    "claimed": shared_by(claimed_split),
    "log_claimed": shared_by(claimed_split, loss_weight),
}


def energy_map_with(reduce: Reduction, seconds: float | None) -> Callable:
    """A replacement for :meth:`Analysis.energy_map` that reduces the cells' logits with ``reduce``
    over ``seconds`` of the window around the time (None: the whole window)."""
    def energy_map(self, time: float, resolution: str = "frame", weighting: str = "loss") -> np.ndarray:
        # ``weighting`` is score_pointing's argument, ignored: ``reduce`` decides
        f, w = self.frame_and_window(time)
        grid = self.grids[f] if self.map_grids is None else self.map_grids[f]
        logits = self.model.synthesizer.per_pixel(grid[None], self.sound[w][None])[0].float()
        magnitude = warped_magnitude(self.mix_spec[w], self.cfg).float()
        if seconds is not None:
            keep = self.frames_near(time, w, magnitude.shape[-1], seconds=seconds)
            logits, magnitude = logits[..., keep], magnitude[..., keep]
        share = reduce(logits, self.model.activate(logits), magnitude).cpu().numpy().astype(np.float32)
        return share if resolution == "grid" else upsample(share, self.frame_size)
    return energy_map


def main() -> None:
    args, separator = duet_probe("probe_map_scores", __doc__)
    variants = {name: energy_map_with(reduce, 1.0) for name, reduce in REDUCTIONS.items()}
    variants["clip"] = energy_map_with(REDUCTIONS["power"], None)
    variants["log_clip"] = energy_map_with(REDUCTIONS["log"], None)
    variants["log_2s"] = energy_map_with(REDUCTIONS["log"], 2.0)
    scores = {name: {"hit": [], "ciou": [], "matched": []} for name in [*variants, "library"]}
    for entry in load_duets(args.duets)[:args.count]:
        analysis = separator.analyze(entry["video"], progress=False)
        for name, energy_map in [*variants.items(), ("library", None)]:
            if energy_map is None:
                del analysis.energy_map          # the class's own method again
            else:
                analysis.energy_map = types.MethodType(energy_map, analysis)
            result = score_pointing(analysis, entry)
            for key in scores[name]:
                scores[name][key] += result[key]
    print(f"maps of {args.checkpoint} on {len(scores['power']['hit'])} windows")
    print(f"  {'reduction':<10} {'pointing':>8} {'cIoU':>6} {'matched':>8}")
    for name, values in scores.items():
        print(f"  {name:<10} {np.mean(values['hit']):>8.1%} {np.mean(values['ciou']):>6.3f} {np.mean(values['matched']):>8.3f}")
    hits = {name: np.asarray(values["hit"], dtype=float) for name, values in scores.items()}
    for name in hits:
        if name != "power":
            better, worse = int(((hits[name] - hits["power"]) > 0).sum()), int(((hits[name] - hits["power"]) < 0).sum())
            print(f"  {name} against power: {better} windows gained, {worse} lost")


if __name__ == "__main__":
    with torch.no_grad():
        main()
