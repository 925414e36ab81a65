"""Where does a model keep what it sees? Print its visual grid on generated duets.

    python benchmarks/probe_grid.py --checkpoint RUN/best.pt --duets WORKDIR/duets [--count 3] [--time 4]

For each duet: the players' boxes, the energy map on the grid (the share of the sound each cell's
mask keeps, what clicks and heatmaps use) and the norm of each cell's visual vector. A model that
localises has large vectors and a high share on the players' cells; a model that carries a
video's identity in the cells along the frame's border (a shortcut that zero padding allows) has
nearly constant interior cells and its peaks on the border.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.evaluation.ensembles import box_at  # noqa: E402
from avsep.inference import Separator  # noqa: E402
from avsep.synth import load_duets  # noqa: E402


def cells_of(box, frame_size, grid_shape) -> str:
    """The grid columns and rows a box covers, as 'cols a-b, rows c-d'."""
    (width, height), (rows, cols) = frame_size, grid_shape
    x0, y0, x1, y1 = box
    return (f"cols {int(x0 * cols / width)}-{int((x1 - 1) * cols / width)}, "
            f"rows {int(y0 * rows / height)}-{int((y1 - 1) * rows / height)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--duets", type=Path, required=True, help="a folder from `avsep generate duets`")
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--time", type=float, default=4.0, help="seconds into each duet")
    args = parser.parse_args()
    np.set_printoptions(precision=2, linewidth=200, suppress=True)
    separator = Separator.from_checkpoint(args.checkpoint, device="cpu")
    for duet in load_duets(args.duets)[:args.count]:
        analysis = separator.analyze(duet["video"], progress=False, map_grid="coarse")  # maps on the vectors' grid
        share = analysis.energy_map(args.time, resolution="grid")
        frame = int(np.argmin(np.abs(analysis.frame_times - args.time)))
        grid = analysis.grids[frame]
        norms = grid.reshape(-1, *grid.shape[-2:]).norm(dim=0) if grid.dim() == 4 else grid.norm(dim=0)
        print(f"\n{Path(duet['video']).name}: frame {analysis.frame_size}, grid {share.shape}")
        for source in duet["sources"]:
            box = box_at(source, args.time, duet["fps"])
            print(f"  {source['label']:<16} box {np.round(box).astype(int)} -> {cells_of(box, analysis.frame_size, share.shape)}")
        print("energy share per cell:")
        print(share)
        print("visual vector norm per cell:")
        print(norms.numpy())


if __name__ == "__main__":
    with torch.no_grad():
        main()
