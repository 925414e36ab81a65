"""``avsep preprocess SRC OUT``: turn a folder of videos into audio, frames and index files.

With ``--shards DIR`` the result is then also written as tar shards (``avsep shard OUT DIR``);
OUT may be deleted afterwards, training reads DIR alone.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from avsep.cli.shard import add_shard_options
from avsep.data.preprocess import DEFAULT_MIN_SECONDS, format_summary, preprocess


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC", help="folder of videos laid out as SRC/<label>/<name>.<ext>")
    parser.add_argument("out", metavar="OUT", help="output folder (audio/, frames/, train/val/test.csv)")
    parser.add_argument("--sample-rate", type=int, default=11025, help="audio sample rate in Hz (default: 11025)")
    parser.add_argument("--fps", type=float, default=8.0, help="frames per second to extract (default: 8)")
    parser.add_argument("--frame-size", type=int, default=256, help="shorter side of the frames in pixels (default: 256)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="videos processed in parallel (default: the number of CPUs)")
    parser.add_argument("--seed", type=int, default=1234, help="seed of the train/val/test split (default: 1234)")
    parser.add_argument("--val-frac", type=float, default=0.1, help="fraction of each label's videos for validation")
    parser.add_argument("--test-frac", type=float, default=0.1, help="fraction of each label's videos for testing")
    parser.add_argument("--min-seconds", type=float, default=None,
                        help=f"skip videos shorter than this (default: one clip, {DEFAULT_MIN_SECONDS:.2f} s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--shards", type=Path, metavar="DIR",
                        help="then write the splits as tar shards in DIR (see `avsep shard`)")
    add_shard_options(parser)


def run(args: argparse.Namespace) -> int:
    summary = preprocess(args.src, args.out, workers=args.workers, sample_rate=args.sample_rate, fps=args.fps,
                         frame_size=args.frame_size, seed=args.seed, val_frac=args.val_frac,
                         test_frac=args.test_frac, min_seconds=args.min_seconds, progress=not args.no_progress)
    print(format_summary(summary))
    if not summary["status"]["ok"]:
        return 1
    if args.shards:
        from avsep.data.shard_writer import format_summary as format_shards, write_shards

        shards = write_shards(args.out, args.shards, shard_mb=args.shard_size, seed=args.shard_seed,
                              sample_rate=args.sample_rate, progress=not args.no_progress)
        print(format_shards(shards))
    return 0
