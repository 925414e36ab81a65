"""Score a checkpoint with BSS Eval on a fixed, seeded set of mixtures of held-out videos.

Every figure is reported as mean and median over sources: SDR, SIR and SAR (BSS Eval v3,
sources mode, no permutation search), SI-SDR, and the SDR improvement over the mixture.
``--oracle ibm|irm`` adds the ideal masks on the same mixtures, an upper bound for masking.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from avsep.config import Config
from avsep.data.mixtures import IMAGENET_MEAN, IMAGENET_STD, MixtureDataset, check_rows, fixed_mixtures, make_loader
from avsep.errors import AvsepError
from avsep.data.index import read_index
from avsep.dsp.masks import ideal_masks, masks_to_audio, target_masks
from avsep.evaluation.metrics import bss_eval_sources, si_sdr, summarize
from avsep.dsp.spectrogram import istft, mixture_features
from avsep.utils import pick_device

log = logging.getLogger("avsep")
METRICS = ("SDR", "SIR", "SAR", "SI-SDR", "SDRi")


@torch.no_grad()
def separate_batch(model, batch: dict, cfg: Config, device: torch.device | str = "cpu",
                   oracle: str | None = None) -> dict[str, torch.Tensor]:
    """Estimate every source of a batch of mixtures.

    Returns ``est`` (B, N, n) waveforms, the predicted ``masks`` and ground-truth ``targets``
    (B, N, freq_bins, T) on the warped axis, and the warped ``mix_mag`` (B, 1, freq_bins, T)
    and ``source_mags`` (B, N, freq_bins, T).
    """
    mix, sources, frames = (batch[k].to(device) for k in ("mix", "sources", "frames"))
    length = mix.shape[-1]
    features = mixture_features(mix, cfg, sources)
    masks = model.activate(model(features.log_mix_mag, frames))
    out = {"masks": masks, "mix_mag": features.mix_mag, "source_mags": features.source_mags,
           "targets": target_masks(features.source_mags, features.mix_mag, cfg.mask_type)}
    out["est"] = masks_to_audio(masks, features.mix_spec, cfg, length)
    if oracle:
        batch_size, num = sources.shape[:2]
        ideal = ideal_masks(features.source_spec, features.mix_spec, oracle) * features.mix_spec.unsqueeze(1)
        out["oracle"] = istft(ideal.flatten(0, 1), cfg, length).view(batch_size, num, length)
    return {k: v.cpu() for k, v in out.items()}


def score_mixture(sources: np.ndarray, estimates: dict[str, np.ndarray], mix: np.ndarray) -> dict[str, dict]:
    """Per-source scores of each system for one mixture.

    Args:
        sources: (N, n) ground truth; estimates: system name -> (N, n); mix: (n,).
    Returns:
        system -> metric -> list of N values; ``mixture`` is the unprocessed-mixture baseline.
    """
    mix_stack = np.repeat(mix[None], len(sources), axis=0)
    systems = {"mixture": mix_stack, **estimates}
    scores: dict[str, dict] = {}
    mix_sdr = None
    for name, est in systems.items():
        sdr, sir, sar = bss_eval_sources(sources, est)
        if name == "mixture":
            mix_sdr = sdr
        scores[name] = {"SDR": sdr.tolist(), "SIR": sir.tolist(), "SAR": sar.tolist(),
                        "SI-SDR": si_sdr(sources, est).tolist(), "SDRi": (sdr - mix_sdr).tolist()}
    return scores


def score_against_stems(stem_paths: list[str | Path], estimates: list[np.ndarray], mixture: np.ndarray,
                        sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """SDR of separated waveforms, and of the mixture itself, against ground-truth stem files.

    Stems are decoded at ``sample_rate`` and every signal is cut to the shortest one.
    Returns two (N,) arrays: the estimates' SDR and the mixture's.
    """
    from avsep.data.decode import load_audio

    stems = [load_audio(path, sample_rate) for path in stem_paths]
    n = min(len(mixture), *(len(s) for s in stems), *(len(e) for e in estimates))
    reference = np.stack([s[:n] for s in stems]).astype(np.float64)
    sdr = bss_eval_sources(reference, np.stack([e[:n] for e in estimates]).astype(np.float64))[0]
    mixture_sdr = bss_eval_sources(reference, np.repeat(mixture[None, :n], len(stems), axis=0).astype(np.float64))[0]
    return sdr, mixture_sdr


def score_loader(model, loader, cfg: Config, device: torch.device | str = "cpu", oracle: str | None = None,
                 keep: int = 0, progress: bool = False) -> dict[str, Any]:
    """Score every mixture of ``loader``; returns system -> metric -> {mean, median}.

    With ``keep`` > 0, the first ``keep`` mixtures' separations are returned under ``items``
    (for the HTML report). Mixtures with a silent source are skipped (BSS Eval is undefined).
    """
    collected: dict[str, dict[str, list]] = {}
    items: list[dict] = []
    skipped = 0
    for batch in tqdm(loader, desc="evaluate", unit="batch", disable=not progress, dynamic_ncols=True):
        out = separate_batch(model, batch, cfg, device, oracle)
        for b in range(batch["mix"].shape[0]):
            sources = batch["sources"][b].numpy().astype(np.float64)
            if (np.abs(sources).max(axis=1) < 1e-6).any():
                skipped += 1
                continue
            estimates = {"model": out["est"][b].numpy().astype(np.float64)}
            if oracle:
                estimates[f"oracle_{oracle}"] = out["oracle"][b].numpy().astype(np.float64)
            scores = score_mixture(sources, estimates, batch["mix"][b].numpy().astype(np.float64))
            for system, metrics in scores.items():
                for metric, values in metrics.items():
                    collected.setdefault(system, {}).setdefault(metric, []).extend(values)
            if len(items) < keep:
                items.append(_report_item(batch, out, b, scores, cfg))
    if not collected:
        raise AvsepError("no mixture could be scored (all had a silent source)")
    summary: dict[str, Any] = {system: summarize(metrics) for system, metrics in collected.items()}
    summary["sources_scored"] = len(collected["model"]["SDR"])
    summary["mixtures_skipped"] = skipped
    if keep:
        summary["items"] = items
    return summary


def _frames_to_images(frames: torch.Tensor) -> list[np.ndarray]:
    """Normalised frames (3, T, H, W) -> T uint8 images (H, W, 3)."""
    array = frames.numpy().transpose(1, 2, 3, 0) * IMAGENET_STD + IMAGENET_MEAN
    return list((array.clip(0, 1) * 255).astype(np.uint8))


def _report_item(batch: dict, out: dict, b: int, scores: dict, cfg: Config) -> dict:
    labels = batch["label_names"][b] if "label_names" in batch else [str(int(x)) for x in batch["labels"][b]]
    sources = []
    for n, label in enumerate(labels):
        sources.append({
            "label": label, "frames": _frames_to_images(batch["frames"][b, n]),
            "gt_audio": batch["sources"][b, n].numpy(), "pred_audio": out["est"][b, n].numpy(),
            "gt_mask": out["targets"][b, n].numpy(), "pred_mask": out["masks"][b, n].numpy(),
            "gt_mag": out["source_mags"][b, n].numpy(), "pred_mag": (out["masks"][b, n] * out["mix_mag"][b, 0]).numpy(),
        })
    metrics = {label: {m: scores["model"][m][n] for m in ("SDR", "SIR", "SAR", "SDRi")}
               for n, label in enumerate(labels)}
    return {"name": " + ".join(labels), "sample_rate": cfg.sample_rate, "metrics": metrics, "sources": sources,
            "mixture": {"audio": batch["mix"][b].numpy(), "mag": out["mix_mag"][b, 0].numpy()}}


def summary_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One table row per system: metric mean / median."""
    rows = []
    for system in [s for s in ("model", "mixture") if s in summary] + sorted(k for k in summary if k.startswith("oracle")):
        row: dict[str, Any] = {"system": system}
        for metric in METRICS:
            stats = summary[system][metric]
            row[f"{metric} mean"], row[f"{metric} median"] = round(stats["mean"], 2), round(stats["median"], 2)
        rows.append(row)
    return rows


def format_table(summary: dict[str, Any]) -> str:
    """A plain-text table of mean/median per metric and system, in dB."""
    header = f"{'system':<12}" + "".join(f"{m + ' mean/median':>22}" for m in METRICS)
    lines = [header, "-" * len(header)]
    for row in summary_rows(summary):
        cells = "".join(f"{row[f'{m} mean']:>11.2f}/{row[f'{m} median']:<10.2f}" for m in METRICS)
        lines.append(f"{row['system']:<12}{cells}")
    return "\n".join(lines)


class LabelledDataset(MixtureDataset):
    """A MixtureDataset whose items also carry label names (for the report)."""

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        item["label_names"] = [self.labels[int(i)] for i in item["labels"]]
        return item


def evaluate(checkpoint: str | Path, index: str | Path, num_mix: int | None = None, pairs: int = 100,
             seed: int = 0, oracle: str | None = None, report_dir: str | Path | None = None,
             report_items: int = 12, batch_size: int = 8, workers: int = 0, device: str = "cpu",
             progress: bool = True) -> dict[str, Any]:
    """Score ``checkpoint`` on ``pairs`` fixed mixtures of the videos in ``index``.

    Returns the summary dict (system -> metric -> mean/median); writes an HTML report if
    ``report_dir`` is given.
    """
    from avsep.models.checkpoint import load_model

    device = pick_device(device)
    model, cfg, _ = load_model(checkpoint, device)
    if num_mix:
        cfg = cfg.replace(num_mix=num_mix)
    if pairs < 1:
        raise AvsepError(f"--pairs {pairs}: must be at least 1")
    rows = check_rows(read_index(index), index)
    groups = fixed_mixtures(rows, cfg.num_mix, pairs, seed)
    dataset = LabelledDataset(rows, cfg, train=False, mixtures=groups)
    loader = make_loader(dataset, batch_size, workers, collate_fn=_collate_with_names)
    keep = report_items if report_dir else 0
    summary = score_loader(model, loader, cfg, device, oracle, keep=keep, progress=progress)
    summary["pairs"] = len(groups)
    summary["num_mix"] = cfg.num_mix
    if report_dir:
        from avsep.evaluation.report import write_report

        title = f"avsep evaluation: {Path(checkpoint).name} on {Path(index).name}"
        summary["report"] = str(write_report(report_dir, title, summary_rows(summary), summary.pop("items")))
    return summary


def _collate_with_names(items: list[dict]) -> dict:
    from torch.utils.data import default_collate

    names = [item.pop("label_names") for item in items]
    batch = default_collate(items)
    batch["label_names"] = names
    return batch
