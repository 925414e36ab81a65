"""``avsep separate VIDEO --checkpoint CKPT (--point X,Y | --box X0,Y0,X1,Y1 | --detect) ... --out DIR``.

Writes one wav per query (or per tracked object with ``--detect``) and ``residual.wav``, the
mixture minus them, at the video's own sample rate and level. Every region is checked before
anything is written.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from avsep.config import QUERY_POOLS
from avsep.errors import AvsepError
from avsep.utils import check_output_folder


def numbers(text: str, count: int, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise AvsepError(f"--{what} {text!r}: expected {count} comma-separated numbers")
    return values


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by separate and localize."""
    parser.add_argument("video", type=Path, help="the video")
    parser.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint from `avsep train`")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--start", type=float, help="analyse from this time (seconds)")
    parser.add_argument("--duration", type=float, help="analyse this many seconds")
    parser.add_argument("--detector", metavar="PATH_OR_NAME",
                        help="ultralytics weights for --detect (default: yolov8s-oiv7.pt; needs avsep[detect])")
    parser.add_argument("--json", action="store_true", help="print what was written as one JSON object")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: cuda if available)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_video_arguments(parser)
    parser.add_argument("--point", action="append", default=[], metavar="X,Y", help="a pixel of the source (repeatable)")
    parser.add_argument("--box", action="append", default=[], metavar="X0,Y0,X1,Y1",
                        help="a box around the source, pixels of the original frame (repeatable)")
    parser.add_argument("--detect", action="store_true", help="separate every object the detector tracks")
    parser.add_argument("--partition", action="store_true",
                        help="share the sound between the queries: stems plus residual add up to the mixture")
    parser.add_argument("--pool", choices=QUERY_POOLS,
                        help="how the cells of a box or point combine (default: the model's configured pool, vector for both presets; see docs/separating.md)")
    parser.add_argument("--radius", type=int, default=None, metavar="CELLS",
                        help="a point also selects the grid cells within this many cells of it (default: 1)")


def analyze(args: argparse.Namespace, map_grid: str = "coarse"):
    """The analysis of ``args.video``; separating needs no energy maps, hence the coarse default."""
    from avsep.inference import Separator

    if not args.video.is_file():
        raise AvsepError(f"{args.video}: video not found")
    separator = Separator.from_checkpoint(args.checkpoint, args.device)
    return separator.analyze(args.video, args.start, args.duration, progress=not args.json, map_grid=map_grid)


def make_detector(args: argparse.Namespace):
    from avsep.inference.detector import DEFAULT_WEIGHTS, YoloDetector

    return YoloDetector(args.detector or DEFAULT_WEIGHTS, device="cpu" if args.device == "auto" else args.device)


def write_stem(out: Path, name: str, audio: np.ndarray, analysis) -> dict:
    from avsep.data.decode import write_wav

    path = out / f"{name}.wav"
    write_wav(path, np.clip(audio, -1.0, 1.0), analysis.input_rate)
    times, levels = analysis.loudness(audio)
    mean_db = 10 * np.log10(np.mean(np.square(audio, dtype=np.float64)) + 1e-12)
    return {"file": str(path), "loudness_dbfs": round(float(mean_db), 2),
            "loudness": {"times": [round(float(t), 3) for t in times], "dbfs": [round(float(v), 2) for v in levels]}}


def run(args: argparse.Namespace) -> int:
    from avsep.inference import Box, Point
    from avsep.inference.separator import check_regions

    regions = [Point(*numbers(p, 2, "point")) for p in args.point] + [Box(*numbers(b, 4, "box")) for b in args.box]
    if not regions and not args.detect:
        raise AvsepError("give at least one --point X,Y or --box X0,Y0,X1,Y1, or --detect")
    if args.radius is not None and args.radius < 0:
        raise AvsepError(f"--radius {args.radius}: must be 0 or more cells")
    check_regions(args.video, regions)
    check_output_folder(args.out)
    detector = make_detector(args) if args.detect else None  # fail on missing weights before the analysis
    analysis = analyze(args)
    names = [f"point{i}_{r.x:g}_{r.y:g}" if isinstance(r, Point) else f"box{i}_{r.x0:g}_{r.y0:g}_{r.x1:g}_{r.y1:g}"
             for i, r in enumerate(regions, 1)]
    if detector is not None:
        from avsep.inference.objects import detect_objects

        for track in detect_objects(analysis, detector).values():
            regions.append(track.boxes)
            names.append(f"object{track.track_id}_{track.class_name.replace(' ', '_')}")
    stems, residual = analysis.separate_regions(regions, partition=args.partition, pool=args.pool, radius=args.radius)
    args.out.mkdir(parents=True, exist_ok=True)
    written = [dict(name=name, **write_stem(args.out, name, stem, analysis)) for name, stem in zip(names, stems)]
    report = {"video": str(args.video), "sample_rate": analysis.input_rate, "queries": written,
              "residual": write_stem(args.out, "residual", residual, analysis)}
    if args.json:
        print(json.dumps(report))
    else:
        for item in written + [dict(name="residual", **report["residual"])]:
            print(f"{item['name']:<32} {item['loudness_dbfs']:7.1f} dBFS  -> {item['file']}")
    return 0
