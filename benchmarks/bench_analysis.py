"""Analysis speed, query latency and memory per minute of video.

    python benchmarks/bench_analysis.py [--checkpoint-small RUN/best.pt]

For the ``sop`` and ``small`` presets (untrained weights unless a checkpoint is given: speed does
not depend on the weights), on generated 10 s and 60 s 640x360 videos:

* ``analyze``: wall time and how many times faster than real time (target: >= 5x at ``sop``),
  with fine energy-map grids (the default: eight more vision passes per frame) and coarse ones;
* queries after analysis: point and box latency, median and p95 over 40 queries each
  (targets: p95 <= 50 ms for a 10 s video, <= 200 ms for 60 s);
* memory the analysis holds, per minute of video (tensors it keeps), and the process's peak RSS.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.config import Config  # noqa: E402
from avsep.inference import Separator  # noqa: E402
from avsep.models.checkpoint import save_checkpoint  # noqa: E402
from avsep.models.sop import SoundOfPixels  # noqa: E402


def make_video(folder: Path, seconds: float) -> Path:
    from avsep.synth import load_duets, make_duets

    out = folder / f"video_{seconds:g}s"
    make_duets(out, pairs=[("violin", "flute")], count=1, seconds=seconds, seed=5, size=(640, 360), pool="test")
    return Path(load_duets(out)[0]["video"])


def held_bytes(analysis) -> int:
    tensors = [analysis.sound, analysis.mix_spec, analysis.grids]
    tensors += [] if analysis.map_grids is None else [analysis.map_grids]
    arrays = [analysis.mixture, analysis.input_mixture, analysis.gains, analysis.starts]
    return sum(t.numel() * t.element_size() for t in tensors) + sum(a.nbytes for a in arrays)


def latency(analysis, queries: list[dict]) -> tuple[float, float]:
    times = []
    for query in queries:
        began = time.perf_counter()
        analysis.separate(**query)
        times.append(time.perf_counter() - began)
    return float(np.median(times)) * 1000, float(np.percentile(times, 95)) * 1000


def checkpoint_for(preset: str, folder: Path, given: Path | None) -> Path:
    if given:
        return given
    cfg = Config.preset(preset).replace(imagenet_pretrained=False)
    torch.manual_seed(0)
    return save_checkpoint(folder / f"{preset}.pt", SoundOfPixels(cfg), cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint-small", type=Path)
    parser.add_argument("--checkpoint-sop", type=Path)
    parser.add_argument("--lengths", type=float, nargs="+", default=[10.0, 60.0])
    parser.add_argument("--map-grids", nargs="+", choices=["fine", "coarse"], default=["fine", "coarse"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        videos = {seconds: make_video(folder, seconds) for seconds in args.lengths}
        print(f"{'preset':<7}{'maps':<7}{'video':>7}{'analyze':>10}{'x real time':>13}{'point p50/p95 ms':>19}"
              f"{'box p50/p95 ms':>17}{'MB per minute':>15}")
        for preset, given in (("small", args.checkpoint_small), ("sop", args.checkpoint_sop)):
            separator = Separator.from_checkpoint(checkpoint_for(preset, folder, given), device="cpu")
            for grid, (seconds, video) in ((g, v) for g in args.map_grids for v in videos.items()):
                began = time.perf_counter()
                analysis = separator.analyze(video, progress=False, map_grid=grid)
                took = time.perf_counter() - began
                points = [dict(point=(float(rng.uniform(0, 640)), float(rng.uniform(0, 360)))) for _ in range(40)]
                boxes = [dict(box=(x, y, x + 160, y + 120)) for x, y in rng.uniform(0, 200, (40, 2))]
                p50, p95 = latency(analysis, points)
                b50, b95 = latency(analysis, boxes)
                per_minute = held_bytes(analysis) / 2 ** 20 * 60 / seconds
                print(f"{preset:<7}{grid:<7}{seconds:>6g}s{took:>9.2f}s{seconds / took:>12.1f}x{p50:>10.1f}/{p95:<8.1f}"
                      f"{b50:>8.1f}/{b95:<8.1f}{per_minute:>14.1f}", flush=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS of this process: {peak:.0f} MB (torch {torch.__version__}, {torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
