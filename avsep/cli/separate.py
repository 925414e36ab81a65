"""``avsep separate VIDEO --checkpoint CKPT --point X,Y --box X0,Y0,X1,Y1 --out DIR``."""
from __future__ import annotations

import argparse
from pathlib import Path

from avsep.data.decode import write_wav
from avsep.errors import AvsepError
from avsep.inference.separator import Box, Point, Region, Separator, heatmap_strip


def _numbers(text: str, count: int, what: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != count:
        raise AvsepError(f"--{what} {text!r}: expected {count} comma-separated numbers")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", type=Path, help="the video to separate")
    parser.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint from `avsep train`")
    parser.add_argument("--point", action="append", default=[], metavar="X,Y", help="a pixel of the source (repeatable)")
    parser.add_argument("--box", action="append", default=[], metavar="X0,Y0,X1,Y1", help="a box around the source (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the wavs (and heatmap)")
    parser.add_argument("--pool", choices=["max", "mean"], default="max",
                        help="combine a box's cells by max-pooling their visual vectors (default) or averaging their masks")
    parser.add_argument("--heatmap", action="store_true",
                        help="also write heatmap.png: where the sound comes from, clip by clip")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: cuda if available)")


def run(args: argparse.Namespace) -> int:
    regions: list[Region] = [Point(*_numbers(p, 2, "point")) for p in args.point]
    regions += [Box(*_numbers(b, 4, "box")) for b in args.box]
    if not regions:
        raise AvsepError("give at least one --point X,Y or --box X0,Y0,X1,Y1")
    if not args.video.is_file():
        raise AvsepError(f"{args.video}: video not found")
    separator = Separator(args.checkpoint, args.device)
    video = separator.load_video(args.video)
    result = separator.separate(video, regions, args.pool)
    args.out.mkdir(parents=True, exist_ok=True)
    write_wav(args.out / "mixture.wav", result.mixture, result.sample_rate)
    for i, (region, source) in enumerate(zip(regions, result.sources), 1):
        path = args.out / f"region{i}.wav"
        write_wav(path, source, result.sample_rate)
        print(f"{region} -> {path}")
    if args.heatmap:
        from avsep.viz.images import save_png

        save_png(heatmap_strip(separator.localize(video)), args.out / "heatmap.png")
        print(f"heatmap -> {args.out / 'heatmap.png'}")
    return 0


