"""Score a checkpoint with BSS Eval on a fixed, seeded set of distinct mixtures of held-out videos.

Every figure is the mean and the median over sources of SDR, SIR and SAR (BSS Eval v3, sources
mode, no permutation search), SI-SDR, and the SDR improvement over the mixture (SDRi), for:

* ``model``: the model's soft masks, avsep's own protocol;
* ``model_binary``: the same masks thresholded at ``mask_threshold`` (0.5), the protocol of the
  original Sound of Pixels code (``mask_thres``), comparable with the paper's table (binary
  masks only);
* ``mixture``: the unprocessed mixture, the baseline;
* ``oracle_ibm`` / ``oracle_irm`` with ``--oracle``: ideal masks, an upper bound for masking.

Silent estimates score a floor value and count (:mod:`avsep.evaluation.scoring`); mixtures with a
silent reference are skipped and counted. See docs/protocol.md.
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm import tqdm

from avsep.config import Config
from avsep.data.index import read_index
from avsep.data.mixtures import MixtureDataset, check_rows, fixed_mixtures, make_loader
from avsep.data.splits import manifest_overlap
from avsep.dsp.inputs import denormalize_pixels, mixture_features
from avsep.dsp.masks import ideal_masks, masks_to_audio, target_masks
from avsep.dsp.spectrogram import istft
from avsep.errors import AvsepError
from avsep.evaluation.metrics import summarize
from avsep.evaluation.scoring import METRICS, score_mixture, silent_references
from avsep.evaluation.tables import label_group, label_group_rows
from avsep.utils import pick_device

log = logging.getLogger("avsep")


@torch.no_grad()
def separate_batch(model, batch: dict, cfg: Config, device: torch.device | str = "cpu",
                   oracle: str | None = None) -> dict[str, torch.Tensor]:
    """Estimate every source of a batch of mixtures, one pooled mask per source.

    Returns ``est`` (B, N, n) from soft masks and, for binary masks, ``est_binary`` from masks
    thresholded at ``mask_threshold``; the predicted ``masks`` and ground-truth ``targets``
    (B, N, freq_bins, T) on the warped axis; the warped ``mix_mag`` (B, 1, freq_bins, T) and
    ``source_mags`` (B, N, freq_bins, T); and ``oracle`` (B, N, n) when asked for.
    """
    mix, sources, frames = (batch[k].to(device) for k in ("mix", "sources", "frames"))
    length = mix.shape[-1]
    features = mixture_features(mix, cfg, sources)
    masks = model.activate(model(features.log_mix_mag, frames, batch["owner"].to(device)))
    out = {"masks": masks, "mix_mag": features.mix_mag, "source_mags": features.source_mags,
           "targets": target_masks(features.source_mags, features.mix_mag, cfg.mask_type),
           "est": masks_to_audio(masks, features.mix_spec, cfg, length)}
    if cfg.mask_type == "binary":
        hard = (masks > cfg.mask_threshold).to(masks.dtype)
        out["est_binary"] = masks_to_audio(hard, features.mix_spec, cfg, length)
    if oracle:
        batch_size, num = sources.shape[:2]
        ideal = ideal_masks(features.source_spec, features.mix_spec, oracle) * features.mix_spec.unsqueeze(1)
        out["oracle"] = istft(ideal.flatten(0, 1), cfg, length).view(batch_size, num, length)
    return {k: v.cpu() for k, v in out.items()}


class Tally:
    """Per-source scores of every system, silent estimates and skipped mixtures, as they come."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, list]] = {}
        self.silent: Counter = Counter()
        self.skipped: Counter = Counter()
        self.mixtures = 0
        self.gains_by_labels: dict[str, list[float]] = {}  # label group -> the model's SDRi of its sources

    def add(self, scores: dict[str, dict], labels: Sequence[str] | None = None) -> None:
        """One mixture's scores (:func:`score_mixture`); with its sources' ``labels``, also
        counted under their group (``summary()["label_groups"]``)."""
        self.mixtures += 1
        if labels is not None:
            self.gains_by_labels.setdefault(label_group(labels), []).extend(scores["model"]["SDRi"])
        for system, metrics in scores.items():
            self.silent[system] += int(sum(metrics["silent"]))
            for metric in METRICS:
                self.values.setdefault(system, {}).setdefault(metric, []).extend(metrics[metric])

    def summary(self) -> dict[str, Any]:
        if not self.values:
            reasons = ", ".join(f"{n} {why}" for why, n in self.skipped.items()) or "no mixtures"
            raise AvsepError(f"no mixture could be scored ({reasons})")
        summary: dict[str, Any] = {system: summarize(metrics) for system, metrics in self.values.items()}
        summary["sources_scored"] = len(self.values["model"]["SDR"])
        summary["mixtures_scored"] = self.mixtures
        summary["silent_estimates"] = {system: self.silent[system] for system in self.values}
        summary["mixtures_skipped"] = dict(self.skipped)
        if self.gains_by_labels:
            summary["label_groups"] = label_group_rows(self.gains_by_labels)
        return summary


def score_loader(model, loader, cfg: Config, device: torch.device | str = "cpu", oracle: str | None = None,
                 keep: int = 0, progress: bool = False) -> dict[str, Any]:
    """Score every mixture of ``loader``; returns system -> metric -> {mean, median, count} and counts.

    With ``keep`` > 0, the first ``keep`` mixtures' separations are returned under ``items``
    (for the HTML report).
    """
    tally, items = Tally(), []
    # A bar left open is redrawn after the error that stopped it, on the error's line: close it
    # here rather than count on the loop's iterator dying with the frame.
    with tqdm(loader, desc="evaluate", unit="batch", disable=not progress, dynamic_ncols=True) as batches:
        for batch in batches:
            _score_batch(model, batch, cfg, device, oracle, tally, items, keep)
    summary = tally.summary()
    if keep:
        summary["items"] = items
    return summary


def _score_batch(model, batch: dict, cfg: Config, device: torch.device | str, oracle: str | None,
                 tally: Tally, items: list[dict], keep: int) -> None:
    """Separate one batch and add its scores to ``tally`` (its first ``keep`` items to ``items``)."""
    out = separate_batch(model, batch, cfg, device, oracle)
    for b in range(batch["mix"].shape[0]):
        sources, mix = batch["sources"][b].numpy(), batch["mix"][b].numpy()
        if silent_references(sources, mix).any():
            tally.skipped["a source is silent in its window"] += 1
            continue
        estimates = {"model": out["est"][b].numpy()}
        if "est_binary" in out:
            estimates["model_binary"] = out["est_binary"][b].numpy()
        if oracle:
            estimates[f"oracle_{oracle}"] = out["oracle"][b].numpy()
        scores = score_mixture(sources, estimates, mix)
        tally.add(scores, batch["label_names"][b] if "label_names" in batch else None)
        if len(items) < keep:
            items.append(_report_item(batch, out, b, scores, cfg))


def _report_item(batch: dict, out: dict, b: int, scores: dict, cfg: Config) -> dict:
    labels = batch["label_names"][b] if "label_names" in batch else [str(int(x)) for x in batch["labels"][b]]
    sources = []
    for n, label in enumerate(labels):
        frames = [denormalize_pixels(f) for f in batch["frames"][b, n].numpy().transpose(1, 0, 2, 3)]
        sources.append({
            "label": label, "frames": frames,
            "gt_audio": batch["sources"][b, n].numpy(), "pred_audio": out["est"][b, n].numpy(),
            "gt_mask": out["targets"][b, n].numpy(), "pred_mask": out["masks"][b, n].numpy(),
            "gt_mag": out["source_mags"][b, n].numpy(), "pred_mag": (out["masks"][b, n] * out["mix_mag"][b, 0]).numpy(),
        })
    metrics = {label: {m: scores["model"][m][n] for m in ("SDR", "SIR", "SAR", "SDRi")}
               for n, label in enumerate(labels)}
    return {"name": " + ".join(labels), "sample_rate": cfg.sample_rate, "metrics": metrics, "sources": sources,
            "mixture": {"audio": batch["mix"][b].numpy(), "mag": out["mix_mag"][b, 0].numpy()}}


class LabelledDataset(MixtureDataset):
    """A MixtureDataset whose items also carry label names (for the report)."""

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        item["label_names"] = [self.labels[int(i)] for i in item["labels"]]
        return item


def _collate_with_names(items: list[dict]) -> dict:
    from torch.utils.data import default_collate

    names = [item.pop("label_names") for item in items]
    batch = default_collate(items)
    batch["label_names"] = names
    return batch


def check_overlap(state: dict, rows: list, index: str | Path, strict: bool) -> int:
    """Warn loudly (or, with ``strict``, fail) when ``rows`` hold videos the checkpoint trained on."""
    manifest = state.get("train_manifest")
    if manifest is None:
        log.warning("%s: the checkpoint records no training videos; overlap with the test set is not checked", index)
        return 0
    shared = manifest_overlap(manifest, rows)
    if shared:
        message = (f"{index}: {len(shared)} of its {len(rows)} videos were used to train this checkpoint "
                   f"(first: {shared[0]}); these scores do not measure held-out performance")
        if strict:
            raise AvsepError(message)
        log.warning("WARNING: %s", message)
    return len(shared)


def evaluate(checkpoint: str | Path, index: str | Path, num_mix: int | None = None, pairs: int = 100,
             seed: int = 0, oracle: str | None = None, report_dir: str | Path | None = None,
             report_items: int = 12, batch_size: int = 8, workers: int = 0, device: str = "cpu",
             progress: bool = True, strict: bool = False, pool: str | None = None) -> dict[str, Any]:
    """Score ``checkpoint`` on up to ``pairs`` distinct fixed mixtures of the videos in ``index``.

    ``pool`` (``vector``, ``average`` or ``mask``) overrides how the checkpoint's configuration pools a
    video's cells (:meth:`SoundOfPixels.forward`).

    Returns the summary dict (system -> metric -> mean/median/count, and the counts); writes an
    HTML report if ``report_dir`` is given. ``strict`` makes an overlap between the index and
    the checkpoint's training videos an error.
    """
    from avsep.models.checkpoint import load_model

    if pairs < 1:
        raise AvsepError(f"--pairs {pairs}: must be at least 1")
    device = pick_device(device)
    model, cfg, state = load_model(checkpoint, device)
    if num_mix:
        cfg = cfg.replace(num_mix=num_mix)
    if pool:
        cfg = cfg.replace(pool=pool)
        model.cfg = cfg
    rows = check_rows(read_index(index), index, headers=True)
    overlap = check_overlap(state, rows, index, strict)
    groups = fixed_mixtures(rows, cfg.num_mix, pairs, seed)
    if len(groups) < pairs:
        log.warning("%s holds only %d distinct mixtures of %d; scoring those, not %d", index, len(groups),
                    cfg.num_mix, pairs)
    dataset = LabelledDataset(rows, cfg, train=False, mixtures=groups)
    loader = make_loader(dataset, batch_size, workers, collate_fn=_collate_with_names, device=device)
    keep = report_items if report_dir else 0
    summary = score_loader(model, loader, cfg, device, oracle, keep=keep, progress=progress)
    summary.update(mixtures_requested=pairs, mixtures=len(groups), num_mix=cfg.num_mix,
                   videos=len(rows), labels=len({r.label for r in rows}), train_overlap=overlap)
    if report_dir:
        from avsep.evaluation.report import write_report
        from avsep.evaluation.tables import summary_rows

        title = f"avsep evaluation: {Path(checkpoint).name} on {Path(index).name}"
        summary["report"] = str(write_report(report_dir, title, summary_rows(summary), summary.pop("items"),
                                             summary.get("label_groups")))
    return summary
