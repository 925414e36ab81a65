"""``avsep generate solo|duets|bad OUT``: synthetic test videos (see avsep.synth)."""
from __future__ import annotations

import argparse
import logging
import os
import time

from avsep.errors import AvsepError

log = logging.getLogger("avsep")


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    try:
        return int(width), int(height)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected WIDTHxHEIGHT, e.g. 256x256") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    solo = sub.add_parser("solo", help="solo videos OUT/<label>/<name>.mp4")
    solo.add_argument("out")
    solo.add_argument("--labels", nargs="+", default=None)
    solo.add_argument("--per-label", type=int, default=6)
    solo.add_argument("--seconds", type=float, default=8.0)
    solo.add_argument("--seed", type=int, default=0)
    solo.add_argument("--size", type=_size, default=(256, 256), help="WIDTHxHEIGHT")
    solo.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    solo.add_argument("--backend", choices=["auto", "fluidsynth", "numpy"], default="auto")
    duets = sub.add_parser("duets", help="duet videos with stems and boxes")
    duets.add_argument("out")
    duets.add_argument("--pairs", nargs="+", default=None, help="label pairs like violin+trumpet")
    duets.add_argument("--count", type=int, default=4)
    duets.add_argument("--seconds", type=float, default=8.0)
    duets.add_argument("--seed", type=int, default=100)
    duets.add_argument("--size", type=_size, default=(512, 256), help="WIDTHxHEIGHT")
    duets.add_argument("--backend", choices=["auto", "fluidsynth", "numpy"], default="auto")
    bad = sub.add_parser("bad", help="corrupt / no-audio / silent / short files")
    bad.add_argument("out")
    bad.add_argument("--seed", type=int, default=0)
    bad.add_argument("--label", default="violin")


def run(args: argparse.Namespace) -> int:
    from avsep.synth import make_bad_files, make_duets, make_solo_collection

    start = time.perf_counter()
    try:
        if args.kind == "solo":
            paths = make_solo_collection(args.out, args.labels, args.per_label, args.seconds, args.seed, args.size,
                                         args.workers, backend=args.backend)
            what = f"{len(paths)} solo videos"
        elif args.kind == "duets":
            pairs = [tuple(s.split("+")) for s in args.pairs] if args.pairs else None
            entries = make_duets(args.out, pairs, args.count, args.seconds, args.seed, args.size,
                                 backend=args.backend, progress=True)
            what = f"{len(entries)} duets"
        else:
            what = f"{len(make_bad_files(args.out, args.seed, args.label))} bad files"
    except (KeyError, ValueError) as err:
        raise AvsepError(str(err).strip("'\"")) from None
    log.info("%s in %s (%.1f s)", what, args.out, time.perf_counter() - start)
    return 0
