"""``avsep app --checkpoint CKPT [--videos DIR]``: click a playing video in the browser to hear that spot.

Serves a local page (http://127.0.0.1:8765/ by default) where you choose a video from DIR or
upload one; after one analysis, a click plays the separated sound of that spot from that moment,
a drag chooses a box, and a detected object's box plays its tracked stem. See docs/app.md.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from avsep.errors import AvsepError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint from `avsep train`")
    parser.add_argument("--videos", type=Path, help="a folder of videos to choose from (searched recursively)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only; anything else "
                             "exposes the app, which has no authentication)")
    parser.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0 picks a free one)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: cuda if available)")
    parser.add_argument("--max-upload-mb", type=float, default=500.0, help="largest upload accepted (default: 500)")
    parser.add_argument("--max-seconds", type=float, default=600.0,
                        help="longest video analysed, in seconds (default: 600; 0 for no limit)")
    parser.add_argument("--max-queue", type=int, default=4,
                        help="analyses that may wait while one runs; more are refused (default: 4)")
    parser.add_argument("--keep-analyses", type=int, default=4,
                        help="analysed videos kept in memory for instant clicks (default: 4)")
    parser.add_argument("--detector", metavar="PATH_OR_NAME",
                        help="ultralytics weights for object boxes (default: yolov8s-oiv7.pt; needs avsep[detect])")
    parser.add_argument("--no-detect", action="store_true", help="no object detection, heatmap and clicks only")


def run(args: argparse.Namespace) -> int:
    from avsep.app import AppOptions
    from avsep.app import run as run_app

    if not args.checkpoint.is_file():
        raise AvsepError(f"--checkpoint {args.checkpoint}: no such file")
    if not 0 <= args.port <= 65535:
        raise AvsepError(f"--port {args.port}: expected 0 to 65535")
    return run_app(AppOptions(checkpoint=args.checkpoint, videos=args.videos, host=args.host, port=args.port,
                              device=args.device, max_upload_mb=args.max_upload_mb, max_seconds=args.max_seconds,
                              max_pending=args.max_queue, keep_analyses=args.keep_analyses,
                              detect=not args.no_detect, detector=args.detector))
