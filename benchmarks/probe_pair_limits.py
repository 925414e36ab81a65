"""Where does a pair of instruments fail, in the vision network or in the sound network?

    python benchmarks/probe_pair_limits.py --checkpoint RUN/best.pt --index WORKDIR/heldout/all.csv [--pairs 100]

Scores the fixed two-source mixtures that ``avsep evaluate`` scores (centred clips at equal
loudness, the same seeded draw) with the model's sound features as they are and four choices of
the visual vector that the synthesizer combines with them, per pair of labels (median SDR gain
of the sources over the mixture):

    own          each source's own pooled vector: the model's score
    label mean   the mean vector of the label's videos in these mixtures (each video once): what
                 the model would score if the vision network saw every video of an instrument alike
    swapped      the other source's vector: a floor
    fitted       a vector fitted to the mixture's ideal binary mask (Adam on the mask loss, the
                 sound features fixed, within the vision network's range): at least this much is
                 reachable from these sound features with some visual vector

Where ``fitted`` is high and ``own`` low, the sound network has what it takes to separate the
pair and the visual vectors do not select it; where ``fitted`` is low too, the sound features
themselves do not tell the two instruments apart. Also prints the fit's mask loss before and
after, and the cosine similarity of the labels' mean vectors as the synthesizer weighs them.

The medians are of the sources' gains, so ``own`` over all pairs differs a little from the
headline of ``avsep evaluate`` (the median SDR less the mixtures' median SDR).
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.data.index import read_index  # noqa: E402
from avsep.data.mixtures import MixtureDataset, check_rows, fixed_mixtures  # noqa: E402
from avsep.dsp.inputs import MixtureFeatures, mixture_features  # noqa: E402
from avsep.dsp.masks import loss_weight, mask_loss, masks_to_audio, target_masks  # noqa: E402
from avsep.errors import AvsepError  # noqa: E402
from avsep.evaluation.scoring import score_mixture, silent_references  # noqa: E402
from avsep.evaluation.tables import label_group  # noqa: E402
from avsep.models.checkpoint import load_model  # noqa: E402
from avsep.models.sop import SoundOfPixels  # noqa: E402

CASES = ("own", "label mean", "swapped", "fitted")
FIT_LR = 0.05  # Adam's step on the unconstrained vector: 150 steps settle the loss (the script prints it)
EVAL_SEED = 0  # avsep evaluate's default seed of its fixed mixtures


class Probe(NamedTuple):
    """Everything one checkpoint's probe computes once."""
    features: MixtureFeatures
    sound: Tensor                 # (B, K, F, T) sound features of the mixtures
    vectors: dict[str, Tensor]    # case -> (B, 2, K) visual vectors
    label_means: dict[str, Tensor]  # label -> (K,) mean vector of its videos
    fit_loss: tuple[float, float]   # the mask loss of the own vectors and of the fitted ones


def to_and_from_range(model: SoundOfPixels) -> tuple[Callable[[Tensor], Tensor], Callable[[Tensor], Tensor]]:
    """Maps from an unconstrained parameter to the vision network's output range, and back.
    (A ReLU's range is kept by clamping after each step instead: see :func:`fit_vectors`.)"""
    if model.cfg.img_activation == "sigmoid":
        return torch.sigmoid, lambda v: torch.logit(v.clamp(1e-4, 1 - 1e-4))
    return (lambda u: u), (lambda v: v.clone())


def vector_logits(model: SoundOfPixels, vectors: Tensor, sound: Tensor) -> Tensor:
    """Mask logits (B, N, F, T) that ``vectors`` (B, N, K) make from ``sound`` (B, K, F, T), as
    :meth:`SoundOfPixels.pooled_logits` makes them from given vectors (its grids then go unused)."""
    return model.pooled_logits(sound, grids=None, vectors=vectors)


def fitted_loss(model: SoundOfPixels, vectors: Tensor, sound: Tensor, targets: Tensor, weight: Tensor) -> Tensor:
    """The mask loss of the masks that ``vectors`` (B, N, K) make from ``sound`` (B, K, F, T)."""
    return mask_loss(vector_logits(model, vectors, sound), targets, model.cfg, weight)


def fit_vectors(model: SoundOfPixels, sound: Tensor, start: Tensor, targets: Tensor, weight: Tensor,
                steps: int) -> tuple[Tensor, tuple[float, float]]:
    """Vectors (B, N, K) fitted by Adam to the mask loss of ``targets`` from ``start``, the
    model's weights fixed; also the loss before and after."""
    to_range, from_range = to_and_from_range(model)
    unconstrained = from_range(start).detach().requires_grad_(True)
    optimizer = torch.optim.Adam([unconstrained], lr=FIT_LR)
    with torch.no_grad():
        before = float(fitted_loss(model, start, sound, targets, weight))
    with torch.enable_grad():
        for _ in range(steps):
            loss = fitted_loss(model, to_range(unconstrained), sound, targets, weight)
            (unconstrained.grad,) = torch.autograd.grad(loss, [unconstrained])
            optimizer.step()
            if model.cfg.img_activation == "relu":
                with torch.no_grad():
                    unconstrained.clamp_(min=0)
    with torch.no_grad():
        fitted = to_range(unconstrained)
        return fitted, (before, float(fitted_loss(model, fitted, sound, targets, weight)))


def fixed_batch(rows, cfg, pairs: int) -> tuple[dict[str, Tensor], list[list[int]]]:
    """``avsep evaluate``'s fixed two-source mixtures of ``rows``, stacked into one batch, and
    their row numbers."""
    groups = fixed_mixtures(rows, 2, pairs, EVAL_SEED)
    dataset = MixtureDataset(rows, cfg, train=False, mixtures=groups)
    items = [dataset[i] for i in range(len(groups))]
    return {k: torch.stack([item[k] for item in items]) for k in ("mix", "sources", "frames", "owner")}, groups


def own_vectors(model: SoundOfPixels, batch: dict[str, Tensor]) -> Tensor:
    """Each source's pooled vector, (B, 2, K); the vision network sees 16 views at a time."""
    frames, owner = batch["frames"], batch["owner"]
    grids = torch.cat([model.view_grids(chunk) for chunk in frames.split(8)])
    return model.pooled_vectors(grids, owner)


def label_means(own: Tensor, groups: list[list[int]], labels: list[str]) -> dict[str, Tensor]:
    """Each label's mean vector over its videos, each video counted once (a video's centred
    view gives it one vector, however many mixtures it is in)."""
    per_video = {row: own[b, n] for b, group in enumerate(groups) for n, row in enumerate(group)}
    return {label: torch.stack([v for row, v in per_video.items() if labels[row] == label]).mean(0)
            for label in sorted({labels[row] for row in per_video})}


def run_probe(model: SoundOfPixels, batch: dict[str, Tensor], groups: list[list[int]], labels: list[str],
              fit_steps: int) -> Probe:
    """The sound features once, and every case's vectors for them."""
    cfg = model.cfg
    with torch.no_grad():
        features = mixture_features(batch["mix"], cfg, batch["sources"])
        sound = model.sound_features(features.log_mix_mag)
        own = own_vectors(model, batch)
    means = label_means(own, groups, labels)
    targets = target_masks(features.source_mags, features.mix_mag, cfg.mask_type)
    fitted, fit_loss = fit_vectors(model, sound, own, targets, loss_weight(features.mix_mag), fit_steps)
    vectors = {"own": own, "swapped": own[:, [1, 0]], "fitted": fitted,
               "label mean": torch.stack([torch.stack([means[labels[row]] for row in group]) for group in groups])}
    return Probe(features, sound, vectors, means, fit_loss)


def gains_by_pair(model: SoundOfPixels, batch: dict[str, Tensor], groups: list[list[int]], labels: list[str],
                  probe: Probe) -> dict[str, dict[str, list[float]]]:
    """case -> ``label + label`` (and ``all pairs``) -> the sources' SDR gains; mixtures with a
    silent reference are left out, as evaluation leaves them out."""
    scorable = [b for b in range(len(groups))
                if not silent_references(batch["sources"][b].numpy(), batch["mix"][b].numpy()).any()]
    gains: dict[str, dict[str, list[float]]] = {case: defaultdict(list) for case in CASES}
    with torch.no_grad():
        for case in CASES:
            logits = vector_logits(model, probe.vectors[case], probe.sound)
            estimates = masks_to_audio(model.activate(logits), probe.features.mix_spec, model.cfg,
                                       batch["mix"].shape[-1])
            for b in scorable:
                mix, sources = batch["mix"][b].numpy(), batch["sources"][b].numpy()
                sdri = [float(x) for x in score_mixture(sources, {"model": estimates[b].numpy()}, mix)["model"]["SDRi"]]
                gains[case][label_group([labels[row] for row in groups[b]])].extend(sdri)
                gains[case]["all pairs"].extend(sdri)
    return gains


def print_gains(gains: dict[str, dict[str, list[float]]]) -> None:
    """One row per pair of labels, the weakest with their own vectors first, then all pairs."""
    print(f"  {'labels mixed':32s}" + "".join(f"{case:>12s}" for case in CASES) + "  sources")
    keys = sorted((k for k in gains["own"] if k != "all pairs"), key=lambda k: np.median(gains["own"][k]))
    for key in keys + ["all pairs"]:
        print(f"  {key:32s}" + "".join(f"{np.median(gains[case][key]):+12.2f}" for case in CASES)
              + f"  {len(gains['own'][key])}")


def print_similarities(means: dict[str, Tensor], scale: Tensor) -> None:
    """Cosine similarities of the labels' mean vectors, each channel weighted by the
    synthesizer's scale (as the masks weigh it) and centred on the labels' common mean (vectors
    after a sigmoid are all positive, so raw cosines are all near 1 and say little)."""
    names = sorted(means)
    weighted = {name: means[name] * scale for name in names}
    centre = torch.stack(list(weighted.values())).mean(0)
    print("cosine similarity of the labels' mean vectors (weighted by the synthesizer's scale, centred):")
    for i, a in enumerate(names):
        print(f"  {a:18s}" + "".join(
            f"{float(torch.cosine_similarity(weighted[a] - centre, weighted[b] - centre, 0)):7.2f}"
            for b in names[: i + 1]))


def main() -> None:
    """Load, probe, print; a bad checkpoint or index is a one-line error."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True, help="an index of solo videos, e.g. WORKDIR/heldout/all.csv")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--fit-steps", type=int, default=150, help="Adam steps of the fitted vectors")
    args = parser.parse_args()
    if args.pairs < 1 or args.fit_steps < 0:
        sys.exit("--pairs must be at least 1 and --fit-steps at least 0")
    torch.set_num_threads(2)
    try:
        model, cfg, _ = load_model(args.checkpoint)
        if cfg.pool == "mask":
            raise AvsepError(f"{args.checkpoint}: pool='mask' makes masks cell by cell, not from one vector a source")
        rows = check_rows(read_index(args.index), args.index)
        batch, groups = fixed_batch(rows, cfg, args.pairs)
        labels = [row.label for row in rows]
        probe = run_probe(model, batch, groups, labels, args.fit_steps)
        gains = gains_by_pair(model, batch, groups, labels, probe)
    except AvsepError as err:
        sys.exit(str(err))
    print(f"median SDR gain of the sources over the mixture (dB), {args.checkpoint}, {len(groups)} mixtures "
          f"of {args.index}")
    print_gains(gains)
    print(f"mask loss of the own vectors {probe.fit_loss[0]:.4f}, of the fitted ones {probe.fit_loss[1]:.4f}")
    print_similarities(probe.label_means, model.synthesizer.scale.detach())


if __name__ == "__main__":
    main()
