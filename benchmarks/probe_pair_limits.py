"""Where does a pair of instruments fail, in the vision network or in the sound network?

    python benchmarks/probe_pair_limits.py --checkpoint RUN/best.pt --index WORKDIR/heldout/all.csv [--pairs 100]

Scores fixed two-source mixtures of an index (centred clips at equal loudness, as evaluation
makes them) with the model's sound features as they are and four choices of the visual vector
that the synthesizer combines with them, per pair of labels (median SDR gain over the mixture):

    own          each source's own pooled vector: the model's score
    label mean   the mean vector of all the index's videos of the source's label: what the
                 model would score if the vision network saw every video of an instrument alike
    swapped      the other source's vector: a floor
    best vector  a vector fitted to this mixture's ideal binary mask (Adam on the mask loss, the
                 sound features fixed, within the vision network's range): the most any visual
                 vector could get from these sound features

Where ``best vector`` is high and ``own`` low, the sound network has what it takes to separate
the pair and the visual vectors do not select it; where ``best vector`` is low too, the sound
features themselves do not tell the two instruments apart. Also prints the cosine similarity
between the labels' mean vectors (centred on their mean).
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.data.index import read_index  # noqa: E402
from avsep.data.mixtures import MixtureDataset, fixed_mixtures  # noqa: E402
from avsep.dsp.inputs import mixture_features  # noqa: E402
from avsep.dsp.masks import loss_weight, mask_loss, masks_to_audio, target_masks  # noqa: E402
from avsep.errors import AvsepError  # noqa: E402
from avsep.evaluation.scoring import score_mixture, silent_references  # noqa: E402
from avsep.models.checkpoint import load_model  # noqa: E402

CASES = ("own", "label mean", "swapped", "best vector")


def vector_range(model) -> tuple:
    """Maps from an unconstrained parameter to the vision network's output range and back."""
    activation = model.cfg.img_activation
    if activation == "sigmoid":
        return torch.sigmoid, lambda v: torch.logit(v.clamp(1e-4, 1 - 1e-4))
    if activation == "relu":
        return torch.relu, lambda v: v.clone()
    return (lambda u: u), (lambda v: v.clone())


def best_vectors(model, sound: torch.Tensor, start: torch.Tensor, targets: torch.Tensor, weight: torch.Tensor,
                 steps: int) -> torch.Tensor:
    """Vectors (B, N, K) fitted by Adam to the mask loss of ``targets``, from ``start``."""
    squash, unsquash = vector_range(model)
    free = unsquash(start).requires_grad_(True)
    optimizer = torch.optim.Adam([free], lr=0.05)
    for _ in range(steps):
        vectors = squash(free)
        logits = torch.stack([model.synthesizer(vectors[:, n], sound) for n in range(vectors.shape[1])], dim=1)
        loss = mask_loss(logits, targets, model.cfg, weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return squash(free).detach()


def fixed_batch(rows, cfg, pairs: int) -> tuple[dict, np.ndarray]:
    """Fixed two-source mixtures of ``rows`` as evaluation makes them, stacked into one batch,
    and each mixture's two labels, (B, 2)."""
    groups = fixed_mixtures(rows, 2, pairs, seed=0)
    dataset = MixtureDataset(rows, cfg, train=False, mixtures=groups)
    items = [dataset[i] for i in range(len(groups))]
    batch = {k: torch.stack([item[k] for item in items]) for k in ("mix", "sources", "frames", "owner")}
    return batch, np.array([[rows[r].label for r in group] for group in groups])


def vector_cases(model, batch: dict, labels: np.ndarray, fit_steps: int):
    """The mixtures' features, sound features (B, K, F, T), each case's vectors (B, 2, K), and
    each label's mean vector."""
    cfg = model.cfg
    with torch.no_grad():
        features = mixture_features(batch["mix"], cfg, batch["sources"])
        sound = model.sound_features(features.log_mix_mag)
        own = model.pooled_vectors(model.view_grids(batch["frames"]), batch["owner"])
    label_means = {label: own[torch.as_tensor(labels == label)].mean(0) for label in np.unique(labels)}
    targets = target_masks(features.source_mags, features.mix_mag, cfg.mask_type)
    vectors = {"own": own, "swapped": own[:, [1, 0]],
               "label mean": torch.stack([torch.stack([label_means[x] for x in pair]) for pair in labels]),
               "best vector": best_vectors(model, sound, own, targets, loss_weight(features.mix_mag), fit_steps)}
    return features, sound, vectors, label_means


def gains_by_pair(model, batch: dict, labels: np.ndarray, features, sound: torch.Tensor,
                  vectors: dict) -> dict[str, dict[str, list[float]]]:
    """case -> ``label + label`` (and ``all pairs``) -> SDR gains of the sources, the mixtures
    with a silent reference left out as evaluation leaves them."""
    gains: dict[str, dict[str, list[float]]] = {case: defaultdict(list) for case in CASES}
    length = batch["mix"].shape[-1]
    with torch.no_grad():
        for case in CASES:
            logits = torch.stack([model.synthesizer(vectors[case][:, n], sound) for n in range(2)], dim=1)
            estimates = masks_to_audio(model.activate(logits), features.mix_spec, model.cfg, length)
            for b, pair in enumerate(labels):
                sources, mix = batch["sources"][b].numpy(), batch["mix"][b].numpy()
                if silent_references(sources, mix).any():
                    continue
                sdri = [float(x) for x in score_mixture(sources, {"model": estimates[b].numpy()}, mix)["model"]["SDRi"]]
                gains[case][" + ".join(sorted(pair))].extend(sdri)
                gains[case]["all pairs"].extend(sdri)
    return gains


def print_gains(gains: dict[str, dict[str, list[float]]]) -> None:
    print(f"  {'labels mixed':32s}" + "".join(f"{case:>13s}" for case in CASES) + "  sources")
    keys = sorted((k for k in gains["own"] if k != "all pairs"), key=lambda k: np.median(gains["own"][k]))
    for key in keys + ["all pairs"]:
        print(f"  {key:32s}" + "".join(f"{np.median(gains[case][key]):+13.2f}" for case in CASES)
              + f"  {len(gains['own'][key])}")


def print_similarities(label_means: dict[str, torch.Tensor]) -> None:
    # Centred on the labels' common mean: vectors after a sigmoid are all positive, so their
    # raw cosines are all near 1 and say little.
    names = sorted(label_means)
    centre = torch.stack([label_means[name] for name in names]).mean(0)
    print("cosine similarity of the labels' mean vectors, centred on their mean:")
    for i, a in enumerate(names):
        print(f"  {a:18s}" + "".join(
            f"{float(torch.cosine_similarity(label_means[a] - centre, label_means[b] - centre, 0)):7.2f}"
            for b in names[: i + 1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--index", type=Path, required=True, help="an index of solo videos, e.g. WORKDIR/heldout/all.csv")
    parser.add_argument("--pairs", type=int, default=100)
    parser.add_argument("--fit-steps", type=int, default=150, help="Adam steps of the best vector")
    args = parser.parse_args()
    try:
        model, cfg, _ = load_model(args.checkpoint)
        batch, labels = fixed_batch(read_index(args.index), cfg, args.pairs)
    except AvsepError as err:
        sys.exit(str(err))
    model.eval()
    features, sound, vectors, label_means = vector_cases(model, batch, labels, args.fit_steps)
    print(f"median SDR gain over the mixture (dB), {args.checkpoint}, {len(labels)} mixtures of {args.index}")
    print_gains(gains_by_pair(model, batch, labels, features, sound, vectors))
    print_similarities(label_means)


if __name__ == "__main__":
    main()
