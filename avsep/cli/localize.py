"""``avsep localize VIDEO --checkpoint CKPT --out DIR``: where the sound comes from, over time.

Writes ``heatmap.mp4`` (the video with its sound-energy heatmap and the tracked objects' boxes
coloured by loudness, with the original audio) and, when a detector is available, one stem per
tracked object, ``residual.wav`` and ``objects.json`` (track id, class, boxes over time,
loudness over time, sounding or not).
"""
from __future__ import annotations

import argparse
import json
import logging

from avsep.cli.separate import add_video_arguments, analyze, make_detector, write_stem
from avsep.errors import AvsepError
from avsep.utils import atomic_write_text, check_output_folder

log = logging.getLogger("avsep")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_video_arguments(parser)
    parser.add_argument("--no-detect", action="store_true", help="heatmap only, no detector")
    parser.add_argument("--fps", type=float, default=8.0, help="frames per second of heatmap.mp4 (default: 8)")
    parser.add_argument("--max-side", type=int, default=640, help="longer side of heatmap.mp4 in pixels")
    parser.add_argument("--map-grid", choices=["fine", "coarse"],
                        help="heatmap grid: fine (half the network's stride; the default for models with circular "
                             "padding, as `small`) or coarse (a ninth of the vision work; the default for `sop`); "
                             "see docs/separating.md")


def detector_or_none(args: argparse.Namespace):
    """The detector, or None (with a note) when the extra is missing and none was asked for by name."""
    if args.no_detect:
        return None
    try:
        return make_detector(args)
    except AvsepError as err:
        if args.detector or "avsep[detect]" not in str(err):
            raise
        log.warning("no detector (%s): writing the heatmap only", err)
        return None


def run(args: argparse.Namespace) -> int:
    from avsep.inference.media import iter_frames
    from avsep.inference.objects import describe_objects, detect_objects, object_record
    from avsep.viz.heatmap_video import write_heatmap_video

    if args.fps <= 0 or args.max_side < 16:
        raise AvsepError("--fps must be positive and --max-side at least 16")
    check_output_folder(args.out)
    detector = detector_or_none(args)
    analysis = analyze(args, map_grid=args.map_grid)
    objects, residual = [], None
    if detector is not None:
        detect_objects(analysis, detector)
        objects, residual = describe_objects(analysis)
    frames = iter_frames(analysis.source, args.fps, analysis.start, analysis.duration, args.max_side)
    args.out.mkdir(parents=True, exist_ok=True)
    video = write_heatmap_video(analysis, args.out / "heatmap.mp4", frames, args.fps, objects)
    records = []
    for obj in objects:
        name = f"object{obj['track'].track_id}_{obj['track'].class_name.replace(' ', '_')}"
        records.append(object_record(obj, write_stem(args.out, name, obj["stem"], analysis)["file"]))
    report = {"video": str(args.video), "heatmap": str(video), "objects": records}
    if residual is not None:
        report["residual"] = write_stem(args.out, "residual", residual, analysis)["file"]
        atomic_write_text(args.out / "objects.json", json.dumps(records, indent=2) + "\n")
        report["objects_json"] = str(args.out / "objects.json")
    if args.json:
        print(json.dumps(report))
    else:
        print(f"heatmap video -> {video}")
        for rec in records:
            print(f"object {rec['track_id']} ({rec['class']}): {'sounding' if rec['sounding'] else 'silent'} "
                  f"({rec['sounding_share']:.0%} of the time) -> {rec['stem']}")
    return 0
