"""Are pointing misses the maps' or the vision network's? Rescore one model's energy maps, made other ways.

    python benchmarks/probe_map_variants.py --checkpoint RUN/best.pt --duets WORKDIR/duets

Pointing (the energy peak inside a sounding player's box, ``score_pointing``) on the same duets,
paired, with the maps' grid (:meth:`SoundOfPixels.map_grid`) computed:

* ``as_is``: as the analysis makes it;
* ``mirror``, ``mirror_width``: on the frame tiled with its mirror images (both axes, or the width
  only), so that under circular padding no cell's view wraps around to the opposite edge;
* ``reflect_quarter``: on the frame with a reflected margin of a quarter of each side;
* ``scales``, ``scale_1.5``, ``scale_0.75``: averaged with the maps of the frame resized to 0.75
  and 1.5 times, or to one of them.

Also, for the maps as they are, where the missed peaks land: on a silent player, elsewhere, and
how many of those on a cell at the frame's edge. Clicks and the analysis' other outputs do not
change. The variants cost up to four times the maps' vision work; about 3 minutes for 48 duets on
2 cores at the `small` preset.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.evaluation.ensembles import box_at, score_pointing  # noqa: E402
from avsep.evaluation.localization import inside_any  # noqa: E402
from avsep.inference import Separator  # noqa: E402
from avsep.synth import load_duets  # noqa: E402

GridFn = Callable[[torch.Tensor], torch.Tensor]


def mirrored(grid_of: GridFn, height_too: bool) -> GridFn:
    """The grid of the frame tiled with its mirror image(s), cropped back to the frame's cells."""
    def grid(frames: torch.Tensor) -> torch.Tensor:
        big = torch.cat([frames, frames.flip(-1)], dim=-1)
        if height_too:
            big = torch.cat([big, big.flip(-2)], dim=-2)
        out = grid_of(big)
        return out[..., :out.shape[-2] // (2 if height_too else 1), :out.shape[-1] // 2]
    return grid


def reflected(grid_of: GridFn, stride: int, share: float = 0.25) -> GridFn:
    """The grid of the frame with a reflected margin of ``share`` of each side (a multiple of the stride)."""
    def grid(frames: torch.Tensor) -> torch.Tensor:
        *lead, height, width = frames.shape
        my, mx = (max(stride, int(side * share) // stride * stride) for side in (height, width))
        flat = F.pad(frames.reshape(-1, height, width)[None], (mx, mx, my, my), mode="reflect")[0]
        out = grid_of(flat.reshape(*lead, height + 2 * my, width + 2 * mx))
        per_pixel = out.shape[-1] / (width + 2 * mx)            # grid cells per pixel
        top, left = round(my * per_pixel), round(mx * per_pixel)
        return out[..., top:top + round(height * per_pixel), left:left + round(width * per_pixel)]
    return grid


def rescaled(grid_of: GridFn, stride: int, scales: tuple[float, ...]) -> GridFn:
    """The mean of the frame's grid and those of the frame resized by each of ``scales``."""
    def grid(frames: torch.Tensor) -> torch.Tensor:
        base = grid_of(frames)
        batch, channels, times, height, width = frames.shape
        total = base.clone()
        for scale in scales:
            size = tuple(max(stride, round(side * scale / stride) * stride) for side in (height, width))
            resized = F.interpolate(frames.reshape(batch, channels * times, height, width), size=size,
                                    mode="bilinear", align_corners=False, antialias=True)
            other = grid_of(resized.reshape(batch, channels, times, *size))
            total += F.interpolate(other, size=base.shape[-2:], mode="bilinear", align_corners=False)
        return total / (1 + len(scales))
    return grid


def misses(pointing: dict, entry: dict, frame_size: tuple[int, int], edge: int) -> dict[str, int]:
    """Where the missed peaks of ``score_pointing``'s result land: on a silent player's box,
    elsewhere, and how many of them on the frame's edge (within ``edge`` pixels)."""
    width, height = frame_size
    out = {"silent": 0, "elsewhere": 0, "at the edge": 0}
    for time, hit, (row, col) in zip(pointing["time"], pointing["hit"], pointing["peak"]):
        if hit:
            continue
        boxes = [box_at(s, time, float(entry["fps"])) for s in entry["sources"]]
        out["silent" if inside_any((row, col), boxes) else "elsewhere"] += 1   # not a hit, so any player it is on is silent
        out["at the edge"] += int(min(col, row, width - 1 - col, height - 1 - row) < edge)
    return out


def duet_probe(name: str, doc: str) -> tuple[argparse.Namespace, Separator]:
    """The command line of a probe on a model's duets (--checkpoint, --duets, --count), checked,
    and the model's separator on the CPU."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--duets", type=Path, required=True, help="a folder from `avsep generate duets`")
    parser.add_argument("--count", type=int, help="the first COUNT duets (default: all)")
    args = parser.parse_args()
    for path, what in ((args.checkpoint, "checkpoint"), (args.duets, "duets folder")):
        if not path.exists():
            raise SystemExit(f"{name}: {path}: {what} not found")
    return args, Separator.from_checkpoint(args.checkpoint, device="cpu")


def main() -> None:
    args, separator = duet_probe("probe_map_variants", __doc__)
    model, stride = separator.model, separator.cfg.visual_stride
    as_is = model.map_grid
    variants = {"as_is": as_is, "mirror": mirrored(as_is, True), "mirror_width": mirrored(as_is, False),
                "reflect_quarter": reflected(as_is, stride), "scales": rescaled(as_is, stride, (0.75, 1.5)),
                "scale_1.5": rescaled(as_is, stride, (1.5,)), "scale_0.75": rescaled(as_is, stride, (0.75,))}
    hits = {name: [] for name in variants}
    where = {"silent": 0, "elsewhere": 0, "at the edge": 0}
    for entry in load_duets(args.duets)[:args.count]:
        for name, grid in variants.items():
            model.map_grid = grid
            analysis = separator.analyze(entry["video"], progress=False)
            pointing = score_pointing(analysis, entry)
            hits[name] += pointing["hit"]
            if name == "as_is":
                edge = analysis.frame_size[0] // (2 * analysis.grids.shape[-1])   # one cell of the maps' grid
                for key, value in misses(pointing, entry, analysis.frame_size, edge).items():
                    where[key] += value
    model.map_grid = as_is
    print(f"pointing of {args.checkpoint} on {len(hits['as_is'])} windows")
    for name, values in hits.items():
        print(f"  {name:<16} {np.mean(values):.1%}")
    print("missed peaks of the maps as they are: " + ", ".join(f"{k} {v}" for k, v in where.items()))


if __name__ == "__main__":
    with torch.no_grad():
        main()
