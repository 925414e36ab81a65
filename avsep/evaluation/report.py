"""A static HTML report of evaluated mixtures: players, spectrograms, masks and metrics.

``write_report`` writes ``out_dir/index.html`` and its assets under ``out_dir/assets/``,
one folder per item. Every file is written atomically, so a report interrupted half way
never leaves a truncated image or WAV behind a link. The page needs no JavaScript and
no network: CSS is inline and all assets are referenced by relative paths.
"""
from __future__ import annotations

import html
import math
import os
import re
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
from PIL import Image

from avsep.data.decode import write_wav
from avsep.viz.images import mask_image, save_png, spectrogram_image, to_rgb
from avsep.utils import atomic_path, atomic_write_text

__all__ = ["write_report"]

THUMB_SIZE = (160, 160)  # bounding box of frame thumbnails, pixels

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.6em; }
h2 { font-size: 1.2em; margin: 0 0 .5em 0; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: .35em .6em; vertical-align: top; }
th { background: #f2f2f2; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
section.item { border: 1px solid #ddd; border-radius: 6px; padding: 1em; margin: 1.5em 0; }
.mixture { display: flex; gap: 1.5em; align-items: flex-start; margin-bottom: 1em; }
.frames img { height: 96px; margin-right: 4px; }
figure { margin: 0 0 .4em 0; }
figcaption { font-size: .8em; color: #555; }
img.tf { width: 220px; height: 160px; image-rendering: pixelated; display: block; }
audio { width: 220px; display: block; margin-bottom: .3em; }
"""


def write_report(out_dir: str | os.PathLike, title: str, summary_rows: list[dict[str, Any]],
                 items: list[dict[str, Any]], label_groups: list[dict[str, Any]] | None = None) -> Path:
    """Write an HTML report of evaluated mixtures; returns the path of ``index.html``.

    Args:
        out_dir: folder for ``index.html`` and ``assets/`` (created if needed).
        title: page title.
        summary_rows: rows of the summary table, dicts with the same keys, e.g.
            ``{"system": "model", "SDR mean": 5.1, "SDR median": 4.8}``.
        items: one dict per mixture::

            {"name": str, "sample_rate": int,
             "mixture": {"audio": (n,) float, "mag": (F, T)},
             "metrics": {label: {"SDR": float, "SIR": float, "SAR": float}},
             "sources": [{"label": str, "frames": [PIL.Image or (H, W, 3) uint8, ...],
                          "gt_audio": (n,), "pred_audio": (n,),
                          "gt_mask": (F, T), "pred_mask": (F, T),
                          "gt_mag": (F, T), "pred_mag": (F, T)}, ...]}

            Missing optional entries (frames, masks, magnitudes, audio, metrics) are
            simply not shown.
        label_groups: optional rows of the median gain by the labels mixed
            (:func:`avsep.evaluation.tables.label_group_rows`), shown under the summary.
    """
    out_dir = Path(out_dir)
    # Image encoding and file writes release the GIL, so items can overlap on several cores.
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        sections = list(pool.map(_render_item, repeat(out_dir), range(len(items)), items))
    page = "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_esc(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{_esc(title)}</h1>",
        _summary_table(summary_rows),
        *(["<h2>Median SDR gain by the instruments mixed, worst first</h2>", _summary_table(label_groups)]
          if label_groups else []),
        *sections,
        "</body></html>",
    ])
    index_path = out_dir / "index.html"
    atomic_write_text(index_path, page)
    return index_path


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    """Table cell text: floats with 2 decimals, ``n/a`` for nan, anything else as str."""
    if isinstance(value, (float, np.floating)):
        return "n/a" if math.isnan(value) else f"{value:.2f}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def _summary_table(rows: list[dict[str, Any]]) -> str:
    """HTML table of the summary rows; columns are the keys in first-seen order."""
    if not rows:
        return ""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(row.get(c, "")) for c in columns) + "</tr>" for row in rows)
    return f'<table class="summary"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(value: Any) -> str:
    css = ' class="num"' if _is_number(value) else ""
    return f"<td{css}>{_esc(_fmt(value))}</td>"


def _slug(text: str, limit: int = 40) -> str:
    """A filesystem- and URL-safe fragment of ``text``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")[:limit] or "item"


def _url(path: Path, root: Path) -> str:
    """Relative, percent-encoded URL of ``path`` from the folder ``root``."""
    return quote(path.relative_to(root).as_posix())


class _Assets:
    """Writes one item's assets into its folder and returns their relative URLs."""

    def __init__(self, root: Path, folder: Path, sample_rate: int):
        self.root, self.folder, self.sample_rate = root, folder, sample_rate

    def wav(self, name: str, audio: np.ndarray | None) -> str | None:
        if audio is None:
            return None
        path = self.folder / f"{name}.wav"
        write_wav(path, np.nan_to_num(np.asarray(audio, dtype=np.float32).reshape(-1)), self.sample_rate)
        return _url(path, self.root)

    def png(self, name: str, img: Image.Image | None) -> str | None:
        if img is None:
            return None
        return _url(save_png(img, self.folder / f"{name}.png"), self.root)

    def jpg(self, name: str, frame: Image.Image | np.ndarray) -> str:
        thumb = to_rgb(frame)
        thumb.thumbnail(THUMB_SIZE)
        path = self.folder / f"{name}.jpg"
        with atomic_path(path) as tmp:
            thumb.save(tmp, format="JPEG", quality=85)
        return _url(path, self.root)


def _maybe(fn, array: np.ndarray | None) -> Image.Image | None:
    # Palette images: same colours, PNGs ~3x smaller and ~8x faster to encode.
    return None if array is None else fn(array, indexed=True)


def _render_item(root: Path, index: int, item: dict[str, Any]) -> str:
    """One ``<section>``: mixture player and spectrogram, then one table row per source."""
    name = str(item.get("name", f"item {index}"))
    folder = root / "assets" / f"{index:04d}_{_slug(name)}"
    assets = _Assets(root, folder, int(item.get("sample_rate", 11025)))
    mixture = item.get("mixture") or {}
    mix_audio = assets.wav("mixture", mixture.get("audio"))
    mix_spec = assets.png("mixture_spec", _maybe(spectrogram_image, mixture.get("mag")))
    metrics = item.get("metrics") or {}
    rows = [_source_row(assets, k, source, metrics.get(source.get("label")))
            for k, source in enumerate(item.get("sources", []))]
    header = "".join(f"<th>{h}</th>" for h in
                     ("Source", "Frames", "Metrics (dB)", "Ground truth", "Prediction",
                      "Ground-truth mask", "Predicted mask"))
    return "\n".join([
        '<section class="item">',
        f"<h2>{_esc(name)}</h2>",
        '<div class="mixture">',
        _media("Mixture", mix_audio, mix_spec, "mixture spectrogram"),
        "</div>",
        f"<table><thead><tr>{header}</tr></thead><tbody>",
        *rows,
        "</tbody></table></section>",
    ])


def _source_row(assets: _Assets, k: int, source: dict[str, Any],
                metrics: dict[str, Any] | None) -> str:
    """One table row: label, frame thumbnails, metrics, then ground truth vs prediction."""
    label = str(source.get("label", f"source {k}"))
    frames = [assets.jpg(f"src{k}_frame{i}", f) for i, f in enumerate(source.get("frames") or [])]
    thumbs = "".join(f'<img src="{_esc(url)}" alt="{_esc(label)} frame {i}">'
                     for i, url in enumerate(frames))
    gt_media, gt_mask = _role_cells(assets, k, source, label, "gt")
    pred_media, pred_mask = _role_cells(assets, k, source, label, "pred")
    return (f"<tr><td><strong>{_esc(label)}</strong></td>"
            f'<td class="frames">{thumbs}</td><td>{_metrics_table(metrics)}</td>'
            f"<td>{gt_media}</td><td>{pred_media}</td><td>{gt_mask}</td><td>{pred_mask}</td></tr>")


def _role_cells(assets: _Assets, k: int, source: dict[str, Any], label: str,
                role: str) -> tuple[str, str]:
    """(player + spectrogram, mask) cell contents of source ``k`` for role "gt" or "pred"."""
    stem = f"src{k}_{role}"
    text = f"{label} {'ground-truth' if role == 'gt' else 'predicted'}"
    audio = assets.wav(stem, source.get(f"{role}_audio"))
    spec = assets.png(f"{stem}_spec", _maybe(spectrogram_image, source.get(f"{role}_mag")))
    mask = assets.png(f"{stem}_mask", _maybe(mask_image, source.get(f"{role}_mask")))
    return _media("", audio, spec, f"{text} spectrogram"), _media("", None, mask, f"{text} mask")


def _media(caption: str, audio_url: str | None, image_url: str | None, alt: str) -> str:
    """A figure with an optional audio player above an optional time-frequency image."""
    parts = ["<figure>"]
    if caption:
        parts.append(f"<figcaption>{_esc(caption)}</figcaption>")
    if audio_url:
        parts.append(f'<audio controls preload="none" src="{_esc(audio_url)}"></audio>')
    if image_url:
        parts.append(f'<img class="tf" src="{_esc(image_url)}" alt="{_esc(alt)}">')
    parts.append("</figure>")
    return "".join(parts)


def _metrics_table(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "n/a"
    rows = "".join(f"<tr><th>{_esc(k)}</th>{_cell(v)}</tr>" for k, v in metrics.items())
    return f"<table>{rows}</table>"
