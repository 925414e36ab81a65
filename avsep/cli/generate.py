"""``avsep generate solo|duets|bad|sheet OUT``: synthetic test videos (see avsep.synth).

``--pool train`` (default) draws backgrounds, soundfonts and melodies from the training pool,
``--pool test`` from the held-out pool, which training never sees. ``--backgrounds DIR`` puts
your own pictures behind the players instead of the pool's wallpapers.
"""
from __future__ import annotations

import argparse
import logging
import os
import time

from avsep.errors import AvsepError

log = logging.getLogger("avsep")
POOL_HELP = "train: training material; test: held-out backgrounds, soundfont and melodies"
BACKGROUNDS_HELP = "a folder of your own pictures to use as the pool's backgrounds instead of its wallpaper packages"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Values are checked in run(), not by argparse, so that a bad one gives the one-line
    # `avsep: error: ...` message naming the argument instead of a usage dump.
    sub = parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    solo = sub.add_parser("solo", help="solo videos OUT/<label>/<name>.mp4 (+ .json metadata)")
    solo.add_argument("out")
    solo.add_argument("--pool", default="train", help=POOL_HELP)
    solo.add_argument("--labels", nargs="+", default=None)
    solo.add_argument("--per-label", default="6")
    solo.add_argument("--seconds", default="8")
    solo.add_argument("--seed", default="0")
    solo.add_argument("--size", default="256x256", help="WIDTHxHEIGHT")
    solo.add_argument("--workers", default=str(os.cpu_count() or 1))
    solo.add_argument("--backend", default="auto", help="auto, fluidsynth or numpy")
    solo.add_argument("--backgrounds", metavar="DIR", help=BACKGROUNDS_HELP)
    duets = sub.add_parser("duets", help="scenes of 2-4 players with stems and boxes")
    duets.add_argument("out")
    duets.add_argument("--pool", default="train", help=POOL_HELP)
    duets.add_argument("--players", default="2", help="players per scene, 2-4 (when --pairs is not given)")
    duets.add_argument("--pairs", nargs="+", default=None, help="label groups like violin+trumpet or violin+drum+flute")
    duets.add_argument("--labels", nargs="+", default=None, help="labels to draw groups from (without --pairs)")
    duets.add_argument("--count", default="4")
    duets.add_argument("--seconds", default="8")
    duets.add_argument("--seed", default="100")
    duets.add_argument("--size", default="512x256", help="WIDTHxHEIGHT")
    duets.add_argument("--workers", default="1")
    duets.add_argument("--backend", default="auto", help="auto, fluidsynth or numpy")
    duets.add_argument("--backgrounds", metavar="DIR", help=BACKGROUNDS_HELP)
    bad = sub.add_parser("bad", help="corrupt / no-audio / silent / short files")
    bad.add_argument("out")
    bad.add_argument("--seed", default="0")
    bad.add_argument("--label", default="violin")
    sheet = sub.add_parser("sheet", help="a PNG contact sheet of sample frames from both pools")
    sheet.add_argument("out", help="PNG file to write")
    sheet.add_argument("--seed", default="0")


def _number(args: argparse.Namespace, name: str, kind: type, low: float) -> float:
    text = getattr(args, name)
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or value < low:
        what = "an integer" if kind is int else "a number"
        raise AvsepError(f"--{name.replace('_', '-')} {text!r}: expected {what} of at least {low:g}")
    return value


def _size(args: argparse.Namespace) -> tuple[int, int]:
    from avsep.synth.jobs import MIN_SIZE

    width, _, height = args.size.lower().partition("x")
    try:
        w, h = int(width), int(height)
    except ValueError:
        w = h = 0
    if w < MIN_SIZE or h < MIN_SIZE or w % 2 or h % 2:
        raise AvsepError(f"--size {args.size!r}: expected WIDTHxHEIGHT, even numbers of at least {MIN_SIZE}, "
                         "e.g. 256x256")
    return w, h


def _choice(args: argparse.Namespace, name: str, choices: tuple[str, ...]) -> str:
    value = getattr(args, name)
    if value not in choices:
        raise AvsepError(f"--{name} {value!r}: expected one of {', '.join(choices)}")
    return value


def _labels(labels: list[str], option: str) -> None:
    from avsep.synth.instruments import CATALOG

    for label in labels:
        if label not in CATALOG:
            raise AvsepError(f"{option} {label!r}: unknown instrument; known: {', '.join(sorted(CATALOG))}")


def _groups(args: argparse.Namespace) -> list[tuple[str, ...]] | None:
    if not args.pairs:
        return None
    groups = [tuple(g.split("+")) for g in args.pairs]
    for text, group in zip(args.pairs, groups):
        _labels(list(group), "--pairs")
        if not 2 <= len(group) <= 4 or len(set(group)) != len(group):
            raise AvsepError(f"--pairs {text!r}: expected 2 to 4 different labels joined by +, e.g. violin+drum")
    return groups


def _common(args: argparse.Namespace) -> dict:
    return dict(seconds=_number(args, "seconds", float, 0.5), seed=_number(args, "seed", int, 0),
                size=_size(args), pool=_choice(args, "pool", ("train", "test")),
                backend=_choice(args, "backend", ("auto", "fluidsynth", "numpy")))


def _backgrounds(args: argparse.Namespace, pool: str):
    """The pool's backgrounds from ``--backgrounds`` for the run (a context manager)."""
    from avsep.synth.backgrounds import check_folder, use_folder

    if args.backgrounds is not None:
        check_folder(args.backgrounds, "--backgrounds")
    return use_folder(pool, args.backgrounds)


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    try:
        what = _generate(args)
    except (KeyError, ValueError) as err:  # e.g. a frame too small for four players
        raise AvsepError(str(err).strip("'\"")) from None
    log.info("%s in %s (%.1f s)", what, args.out, time.perf_counter() - start)
    return 0


def _generate(args: argparse.Namespace) -> str:
    """Check the arguments, generate, and say what was made."""
    from avsep.synth import contact_sheet, make_bad_files, make_duets, make_solo_collection

    if args.kind == "solo":
        _labels(args.labels or [], "--labels")
        common = _common(args)
        with _backgrounds(args, common["pool"]):
            paths = make_solo_collection(args.out, args.labels, int(_number(args, "per_label", int, 1)),
                                         workers=int(_number(args, "workers", int, 1)), **common)
        return f"{len(paths)} solo videos ({common['pool']} pool)"
    if args.kind == "duets":
        _labels(args.labels or [], "--labels")
        groups, common = _groups(args), _common(args)
        players = int(_number(args, "players", int, 2))
        if players > 4:
            raise AvsepError(f"--players {args.players!r}: expected 2, 3 or 4")
        if args.labels and players > len(args.labels):
            raise AvsepError(f"--players {args.players!r}: more players than --labels ({len(args.labels)})")
        with _backgrounds(args, common["pool"]):
            entries = make_duets(args.out, groups, int(_number(args, "count", int, 1)), progress=True, players=players,
                                 workers=int(_number(args, "workers", int, 1)), labels=args.labels, **common)
        return f"{len(entries)} ensemble scenes ({common['pool']} pool)"
    if args.kind == "bad":
        _labels([args.label], "--label")
        return f"{len(make_bad_files(args.out, int(_number(args, 'seed', int, 0)), args.label))} bad files"
    contact_sheet(args.out, seed=int(_number(args, "seed", int, 0)))
    return "contact sheet"
