"""``avsep evaluate-localization``: score sound-energy heatmaps against ground-truth boxes.

Two box formats are read:

* ``--duets DIR``: generated scenes (``avsep generate duets``), one box per frame and player;
  every window in which some player sounds is scored against the boxes of the players sounding.
* ``--vggss FILE --videos DIR``: the VGG-SS layout, a JSON list of ``{"file": NAME, "class": ...,
  "bbox": [[x1, y1, x2, y2], ...]}`` with coordinates normalised to [0, 1]; ``DIR/NAME.mp4``
  (or another video extension) is scored at its middle frame, as VGG-SS annotates it.

Reported: cIoU@0.5 and AUC (the LVS / EZ-VSL protocol, median threshold), mean cIoU, the pointing
rate and size-matched cIoU (see :mod:`avsep.evaluation.localization`). Videos that cannot be read
are logged and skipped, and counted.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

from avsep.config import MAP_WEIGHTINGS
from avsep.cli import checks
from avsep.errors import AvsepError

log = logging.getLogger("avsep")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".webm", ".mov", ".avi")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint from `avsep train`")
    parser.add_argument("--duets", type=Path, help="a folder from `avsep generate duets`")
    parser.add_argument("--vggss", type=Path, help="a VGG-SS style JSON file of boxes")
    parser.add_argument("--videos", type=Path, help="the videos of --vggss")
    parser.add_argument("--limit", type=int, help="score at most this many videos")
    parser.add_argument("--map-weighting", choices=MAP_WEIGHTINGS, default=MAP_WEIGHTINGS[0],
                        help="how the maps weigh the mixture's bins: as the training loss (default) or by power")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: cuda if available)")


def vggss_items(path: Path, videos: Path) -> list[tuple[Path | None, dict]]:
    """(video path or None, entry) for every entry of a VGG-SS style file."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise AvsepError(f"{path}: cannot read VGG-SS boxes: {err}") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "file" in e and "bbox" in e for e in entries):
        raise AvsepError(f"{path}: expected a JSON list of {{\"file\", \"class\", \"bbox\"}} objects")
    found = []
    for entry in entries:
        name = str(entry["file"])
        video = next((videos / (name + ext) for ext in ("",) + VIDEO_EXTENSIONS if (videos / (name + ext)).is_file()), None)
        found.append((video, entry))
    return found


def box_fractions(entry: dict) -> list[list[float]]:
    """An entry's ``bbox``: a list of ``[x1, y1, x2, y2]`` boxes in fractions of the frame, clipped
    to [0, 1] (as the LVS and EZ-VSL loaders clip VGG-SS boxes, some of which reach past the frame)."""
    boxes = entry["bbox"]
    boxes = [boxes] if isinstance(boxes, list) and boxes and not isinstance(boxes[0], list) else boxes
    numeric = isinstance(boxes, list) and boxes and all(
        isinstance(b, list) and len(b) == 4 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in b)
        for b in boxes)
    clipped = [[min(max(float(v), 0.0), 1.0) for v in b] for b in boxes] if numeric else []
    if not clipped or not all(b[0] < b[2] and b[1] < b[3] for b in clipped):
        raise AvsepError(f"{entry['file']}: bbox {str(entry['bbox'])[:60]} is not a list of [x1, y1, x2, y2] "
                         "boxes in fractions of the frame")
    return clipped


def score_vggss(separator, items, weighting: str = "loss"):
    from avsep.evaluation.localization import median_ciou, pointing_hit, size_matched_ciou
    from avsep.inference.analysis import SILENCE_DBFS

    cious, hits, matched, skipped = [], [], [], []
    for video, entry in items:
        if video is None:
            skipped.append(f"{entry['file']}: video not found")
            log.warning("skipping %s", skipped[-1])
            continue
        try:
            fractions = box_fractions(entry)
            analysis = separator.analyze(video, progress=False)
        except AvsepError as err:
            log.warning("skipping %s", err)
            skipped.append(str(err))
            continue
        width, height = analysis.frame_size
        boxes = [[b[0] * width, b[1] * height, b[2] * width, b[3] * height] for b in fractions]
        middle = analysis.duration / 2
        level = analysis.level_near(middle)
        if level <= SILENCE_DBFS:   # its map is zero: nothing sounds to point at
            skipped.append(f"{entry['file']}: silent at its middle ({level:.0f} dBFS)")
            log.warning("skipping %s", skipped[-1])
            continue
        heat = analysis.energy_map(middle, weighting=weighting)
        cious.append(median_ciou(heat, boxes))
        hits.append(pointing_hit(heat, boxes))
        matched.append(size_matched_ciou(heat, boxes))
    return cious, hits, matched, skipped


def score_duets(separator, entries: list[dict], weighting: str = "loss"):
    from avsep.evaluation.ensembles import score_pointing

    cious, hits, matched, skipped = [], [], [], []
    for entry in entries:
        try:
            scores = score_pointing(separator.analyze(entry["video"], progress=False), entry, weighting)
        except AvsepError as err:
            log.warning("skipping %s", err)
            skipped.append(str(err))
            continue
        cious += scores["ciou"]
        hits += scores["hit"]
        matched += scores["matched"]
    return cious, hits, matched, skipped


def run(args: argparse.Namespace) -> int:
    from avsep.evaluation.localization import summarize_localization
    from avsep.inference import Separator
    from avsep.synth import load_duets

    checks.at_least(args, limit=1)
    if bool(args.duets) == bool(args.vggss) or (args.vggss and not args.videos):
        raise AvsepError("give --duets DIR, or --vggss FILE with --videos DIR")
    # The boxes are read first, so that their errors come before any model is loaded.
    if args.duets:
        entries, score = load_duets(args.duets), score_duets
    else:
        entries, score = vggss_items(args.vggss, args.videos), score_vggss
    scores = score(Separator.from_checkpoint(args.checkpoint, args.device), entries[:args.limit], args.map_weighting)
    summary = summarize_localization(*scores[:3])
    summary["skipped"] = len(scores[3])
    summary["map_weighting"] = args.map_weighting
    if args.json:
        print(json.dumps(summary))
    elif not summary["count"]:
        print(f"nothing scored ({summary['skipped']} videos skipped)")
    else:
        print(f"{summary['count']} maps scored, {summary['skipped']} videos skipped\n"
              f"cIoU@0.5 {summary['cIoU@0.5']:.3f}   AUC {summary['AUC']:.3f}   mean cIoU {summary['mean_cIoU']:.3f}\n"
              f"pointing {summary['pointing']:.3f}   size-matched cIoU {summary['size_matched_cIoU']:.3f}")
    return 0
