"""``avsep shard DATA_DIR SHARD_DIR``: convert a preprocessed folder into WebDataset-style tar shards."""
from __future__ import annotations

import argparse

from avsep.data.shard_writer import DEFAULT_SHARD_MB, format_summary, write_shards


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA_DIR", help="folder from `avsep preprocess` (train.csv, val.csv, test.csv)")
    parser.add_argument("shards", metavar="SHARD_DIR", help="output folder for the shards and their manifests")
    add_shard_options(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_shard_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--shard-size", type=float, default=DEFAULT_SHARD_MB, metavar="MB",
                        help=f"largest shard in MB (10^6 bytes; default: {DEFAULT_SHARD_MB:g})")
    parser.add_argument("--shard-seed", type=int, default=1234,
                        help="seed of the order of training videos in the shards (default: 1234)")


def run(args: argparse.Namespace) -> int:
    summary = write_shards(args.data, args.shards, shard_mb=args.shard_size, seed=args.shard_seed,
                           progress=not args.no_progress)
    print(format_summary(summary))
    return 0
