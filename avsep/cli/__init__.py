"""The ``avsep`` command line: a thin layer over the library.

Each subcommand lives in its own module, which provides ``add_arguments(parser)`` and
``run(args) -> int``. Errors meant for users (:class:`avsep.AvsepError`), and errors of the file
system (a path that cannot be written or read), become one line on stderr and exit status 2,
never a traceback (``-v`` shows it).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from avsep import __version__
from avsep.errors import AvsepError
from avsep.utils import setup_logging

# subcommand -> (module, one-line help)
COMMANDS = {
    "quickstart": ("avsep.cli.quickstart", "generate demo videos, train, evaluate and separate, end to end"),
    "generate": ("avsep.cli.generate", "generate synthetic solo videos, duets with ground truth, or broken files"),
    "download": ("avsep.download.cli", "download MUSIC, VGGSound or your own list of videos with yt-dlp"),
    "preprocess": ("avsep.cli.preprocess", "turn a folder of videos into audio, frames and index files"),
    "shard": ("avsep.cli.shard", "convert a preprocessed folder into tar shards (few large files)"),
    "train": ("avsep.cli.train", "train a Sound-of-Pixels model by mix-and-separate"),
    "evaluate": ("avsep.cli.evaluate", "score a checkpoint with BSS Eval on fixed mixtures"),
    "separate": ("avsep.cli.separate", "separate the sound of points, boxes or detected objects of a video"),
    "evaluate-localization": ("avsep.cli.evaluate_localization", "score sound heatmaps against ground-truth boxes"),
    "localize": ("avsep.cli.localize", "a heatmap video of where the sound comes from, and tracked objects' stems"),
    "app": ("avsep.cli.app", "a local web page: click a playing video to hear that spot"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="avsep", description="Audio-visual sound separation (The Sound of Pixels).")
    parser.add_argument("--version", action="version", version=f"avsep {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = subparsers.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip().split("\n")[0])
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def os_error_line(err: OSError) -> str:
    """``PATH: problem`` for an error of the file system (both paths of a failed rename or copy)."""
    problem = err.strerror or str(err)
    if err.filename is None:
        return problem.splitlines()[0] if problem else type(err).__name__
    paths = f"{err.filename} -> {err.filename2}" if err.filename2 is not None else str(err.filename)
    return f"{paths}: {problem}"


def close_progress_bars() -> None:
    """End every open progress bar, so that an error starts its own line and no bar is redrawn after it."""
    tqdm_module = sys.modules.get("tqdm")   # never imported: no bar to end
    for bar in list(getattr(getattr(tqdm_module, "tqdm", None), "_instances", ())):
        bar.close()


def fail(line: str, status: int) -> int:
    """Print ``line`` on stderr, on a line of its own, and return the exit ``status``."""
    close_progress_bars()   # a backstop: the library's bars close themselves on errors
    print(line, file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    setup_logging(args.verbose)
    try:
        return int(args.run(args) or 0)
    except AvsepError as err:
        return fail(f"avsep: error: {err}", 2)
    except BrokenPipeError:  # `avsep ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 1
    except OSError as err:  # a path that cannot be written or read: name it, in one line
        if args.verbose:
            raise
        return fail(f"avsep: error: {os_error_line(err)}", 2)
    except KeyboardInterrupt:
        return fail("avsep: interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
