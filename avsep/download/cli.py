"""The ``avsep download DATASET INDEX OUT`` command line."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import AvsepError
from .indexes import DATASETS, VGGSOUND_CLIP_SECONDS, YOUTUBE_URL, limit, load_index, parse_shard, select, shard
from .options import Options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", metavar="DATASET", choices=DATASETS,
                        help="music (MUSIC JSON), vggsound (VGGSound CSV) or urls (CSV of url,label[,start,duration])")
    parser.add_argument("index", metavar="INDEX", help="the dataset's index file")
    parser.add_argument("out", metavar="OUT",
                        help="output folder: OUT/<label>/<name>.mp4, ready for 'avsep preprocess'")
    pick = parser.add_argument_group("selection")
    pick.add_argument("--classes", nargs="+", action="extend", metavar="LABEL",
                      help="only these labels (as in the index, or as folder names); repeatable")
    pick.add_argument("--split", choices=("train", "test"), help="VGGSound only: this split")
    pick.add_argument("--limit", type=int, metavar="N", help="at most N videos, round-robin over labels")
    pick.add_argument("--shard", metavar="I/N", help="only shard I of N (1 <= I <= N), e.g. one per machine")
    fetch = parser.add_argument_group("fetching")
    fetch.add_argument("--workers", type=int, default=4, metavar="N", help="parallel downloads (default 4)")
    fetch.add_argument("--max-height", type=int, default=360, metavar="LINES", help="at most this many lines (default 360)")
    fetch.add_argument("--url-template", default=None, metavar="URL",
                       help=f"URL of an id, with {{id}} (default {YOUTUBE_URL}); e.g. a mirror")
    fetch.add_argument("--cookies", metavar="FILE", help="Netscape cookies.txt for YouTube (see docs/datasets.md)")
    fetch.add_argument("--rate-limit", metavar="RATE", help="bytes per second per worker, e.g. 500K or 2M")
    fetch.add_argument("--sleep", type=float, default=0.0, metavar="SECONDS",
                       help="each worker waits this long (+-25%%) between downloads")
    fetch.add_argument("--clip-seconds", type=float, default=VGGSOUND_CLIP_SECONDS, metavar="SECONDS",
                       help="VGGSound clip length from start_seconds (default 10)")
    fail = parser.add_argument_group("failures")
    fail.add_argument("--retries", type=int, default=5, metavar="N", help="retries of a transient failure (default 5)")
    fail.add_argument("--backoff", type=float, default=2.0, metavar="SECONDS",
                      help="first retry wait, doubling with jitter (default 2)")
    fail.add_argument("--max-wait", type=float, default=300.0, metavar="SECONDS",
                      help="cap on any wait, Retry-After included (default 300)")
    fail.add_argument("--slowdown-after", type=int, default=3, metavar="N",
                      help="429s or bot checks in a row that pause all workers (default 3)")
    fail.add_argument("--slowdown-pause", type=float, default=60.0, metavar="SECONDS",
                      help="first global pause, doubling on each repeat (default 60)")
    fail.add_argument("--socket-timeout", type=float, default=30.0, metavar="SECONDS",
                      help="give up on a silent connection after this long (default 30)")
    fail.add_argument("--retry-failed", action="store_true", help="try permanent failures of earlier runs again")
    parser.add_argument("--dry-run", action="store_true", help="list what would be fetched; no network access")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    items = select_items(args)
    if args.dry_run:
        from .report import dry_run_text
        from .runner import read_state

        out = Path(args.out)
        print(dry_run_text(items, str(out), read_state(out) if out.is_dir() else {}, retry_failed=args.retry_failed))
        return 0
    from .runner import download

    summary = download(items, args.out, make_options(args))
    print(summary.table())
    if summary.incomplete:
        print(f"{summary.incomplete} videos are not done yet: run the same command again to retry them")
        return 1
    return 0


def select_items(args: argparse.Namespace) -> list:
    """Parse INDEX and apply --classes, --split, --shard and --limit, in that order."""
    if args.split and args.dataset != "vggsound":
        raise AvsepError("--split only applies to the vggsound dataset")
    if args.url_template is not None and args.dataset == "urls":
        raise AvsepError("--url-template does not apply to the urls dataset: its CSV holds full URLs")
    if args.limit is not None and args.limit < 1:
        raise AvsepError(f"--limit must be at least 1, got {args.limit}")
    if not args.clip_seconds > 0:
        raise AvsepError(f"--clip-seconds must be positive, got {args.clip_seconds}")
    index, count = parse_shard(args.shard) if args.shard else (1, 1)
    items = load_index(args.dataset, args.index, args.url_template or YOUTUBE_URL, args.clip_seconds)
    items = select(items, args.classes, args.split)
    return limit(shard(items, index, count), args.limit)


def make_options(args: argparse.Namespace) -> Options:
    """Check the fetching options and turn them into :class:`Options`."""
    for name in ("workers", "max_height"):
        if getattr(args, name) < 1:
            raise AvsepError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    for name in ("sleep", "backoff", "max_wait", "slowdown_pause", "retries"):
        if getattr(args, name) < 0:
            raise AvsepError(f"--{name.replace('_', '-')} must not be negative, got {getattr(args, name)}")
    cookies = Path(args.cookies) if args.cookies else None
    if cookies and not cookies.is_file():
        raise AvsepError(f"--cookies {cookies}: no such file")
    return Options(workers=args.workers, max_height=args.max_height, cookies=cookies,
                   rate_limit=_rate(args.rate_limit), sleep=args.sleep, retries=args.retries, backoff=args.backoff,
                   max_wait=args.max_wait, slowdown_after=max(1, args.slowdown_after),
                   slowdown_pause=args.slowdown_pause, socket_timeout=args.socket_timeout,
                   retry_failed=args.retry_failed, shard=parse_shard(args.shard) if args.shard else (1, 1),
                   progress=not args.no_progress)


def _rate(text: str | None) -> int | None:
    if not text:
        return None
    from yt_dlp.utils import parse_bytes

    rate = parse_bytes(text.strip())
    if not rate:
        raise AvsepError(f"--rate-limit {text!r}: expected bytes per second such as 500K or 2M")
    return rate
