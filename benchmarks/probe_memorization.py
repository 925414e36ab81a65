"""Which network fails to generalise, the vision or the audio one? Swap the frames of mixtures.

    python benchmarks/probe_memorization.py --checkpoint RUN/best.pt --data DATA [--pairs 40]
    python benchmarks/probe_memorization.py --checkpoint RUN/best.pt --data WORKDIR/data --unseen WORKDIR/heldout/all.csv

Scores fixed two-source mixtures (centred clips, equal loudness, as validation does) five ways,
each source shown by its own frames or by the frames of another video *of the same label*:

    train audio, own frames          how well the training videos are fitted
    train audio, other train frames  the vision net maps training videos to their instrument
    train audio, unseen frames       the vision net recognises the instrument in videos it never saw
    unseen audio, own frames         the validation (or held-out) score
    unseen audio, train frames       the audio net separates sounds it never heard

(unseen: the validation videos, or those of ``--unseen``). The crossed rows keep only the labels
that both sides have, so where a split lacks a label they score fewer labels than the others.

A model that memorised its training videos scores high on the first two rows and low on the
rest. If the third row is low and the fifth high, the vision net is what fails on new videos;
if the reverse, the audio net. ``--unseen`` takes the videos never seen from another index than
DATA/val.csv: the held-out scenes of bench_generalization.py (new backgrounds, melodies and
soundfont), where the validation videos share the training pools.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.data.index import read_index  # noqa: E402
from avsep.errors import AvsepError  # noqa: E402
from avsep.data.mixtures import MixtureDataset, fixed_mixtures  # noqa: E402
from avsep.evaluation.evaluate import separate_batch  # noqa: E402
from avsep.evaluation.scoring import score_mixture, silent_references  # noqa: E402
from avsep.models.checkpoint import load_model  # noqa: E402


def centred_frames(rows, row_id: int, cfg) -> torch.Tensor:
    """The evaluation view of one video, (3, T, S, S): the first source of a fixed mixture."""
    partner = next(i for i, row in enumerate(rows) if row.label != rows[row_id].label)
    return MixtureDataset(rows, cfg, train=False, mixtures=[[row_id, partner]])[0]["frames"][0]


def items(audio_rows, frame_rows, cfg, pairs: int, rng: np.random.Generator) -> list[dict]:
    """Fixed mixtures of ``audio_rows``; with ``frame_rows`` given, each source is shown by the
    frames of a random other video of its label from ``frame_rows``."""
    dataset = MixtureDataset(audio_rows, cfg, train=False, mixtures=fixed_mixtures(audio_rows, 2, pairs, seed=0))
    out = []
    for index, group in enumerate(dataset.mixtures):
        item = dataset[index]
        if frame_rows is not None:
            views = []
            for row_id in group:
                row = audio_rows[row_id]
                others = [i for i, r in enumerate(frame_rows) if r.label == row.label and r.audio != row.audio]
                views.append(centred_frames(frame_rows, int(rng.choice(others)), cfg))
            item["frames"] = torch.stack(views)
        out.append(item)
    return out


def median_sdr(model, cfg, batch_items: list[dict]) -> float:
    batch = {k: torch.stack([item[k] for item in batch_items]) for k in ("mix", "sources", "frames", "owner")}
    with torch.no_grad():
        estimates = separate_batch(model, batch, cfg)["est"]
    values = []
    for b in range(len(batch_items)):
        sources, mix = batch["sources"][b].numpy(), batch["mix"][b].numpy()
        if not silent_references(sources, mix).any():
            values.extend(np.atleast_1d(score_mixture(sources, {"model": estimates[b].numpy()}, mix)["model"]["SDR"]))
    return float(np.median(values))


def rows_with_labels_of(rows: list, other: list) -> list:
    """The rows of ``rows`` whose label ``other`` also has."""
    return [row for row in rows if row.label in {r.label for r in other}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="a folder from `avsep preprocess`")
    parser.add_argument("--unseen", type=Path, help="index of the videos never seen in training (default: DATA/val.csv)")
    parser.add_argument("--pairs", type=int, default=40)
    args = parser.parse_args()
    unseen_index = args.unseen or args.data / "val.csv"
    try:
        model, cfg, _ = load_model(args.checkpoint)
        train, unseen = read_index(args.data / "train.csv"), read_index(unseen_index)
    except AvsepError as err:
        sys.exit(str(err))
    for path, rows in ((args.data / "train.csv", train), (unseen_index, unseen)):
        counts = {label: sum(r.label == label for r in rows) for label in {r.label for r in rows}}
        if len(counts) < 2 or min(counts.values()) < 2:
            sys.exit(f"{path}: needs 2 labels or more and 2 videos of each; has {counts}")
    rng = np.random.default_rng(0)
    # Frames are swapped within a label, so a crossed case keeps only the labels both sides have
    # (a small validation split can miss a label).
    train_shared, unseen_shared = rows_with_labels_of(train, unseen), rows_with_labels_of(unseen, train)
    if len({row.label for row in train_shared}) < 2:
        sys.exit(f"{args.data / 'train.csv'} and {unseen_index} share fewer than 2 labels: frames cannot be swapped")
    cases = [("train audio, own frames", train, None), ("train audio, other train frames", train, train),
             ("train audio, unseen frames", train_shared, unseen), ("unseen audio, own frames", unseen, None),
             ("unseen audio, train frames", unseen_shared, train)]
    print(f"median SDR (dB) of {args.pairs} fixed mixtures, {args.checkpoint}")
    for name, audio_rows, frame_rows in cases:
        print(f"  {name:34s} {median_sdr(model, cfg, items(audio_rows, frame_rows, cfg, args.pairs, rng)):6.2f}")


if __name__ == "__main__":
    main()
