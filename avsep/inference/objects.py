"""Objects that sound: detected and tracked objects of an analysed video, each with its own stem,
its loudness over time and a sounding-or-silent decision.

An object *sounds* in a half-second stretch when its stem is at most ``SOUNDING_DB`` (10 dB)
below the mixture there, i.e. it holds at least a tenth of the sound, and the mixture itself is
above ``SILENCE_DBFS`` (-60 dBFS). An object is reported as sounding when it sounds in at least
``SOUNDING_FRACTION`` (25%) of the video (stretches counted by their length: a short last one
counts for what it holds). Stems are separated as a partition, so no sound is
given to two objects and the residual holds what none of them makes.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from avsep.errors import AvsepError
from avsep.inference.analysis import SILENCE_DBFS, Analysis, TrackedObject
from avsep.inference.media import iter_frames
from avsep.inference.regions import Box, BoxTrack
from avsep.inference.tracking import group_tracks

SOUNDING_DB = -10.0
SOUNDING_FRACTION = 0.25


def detect_objects(analysis: Analysis, detector, fps: float = 4.0) -> dict[int, TrackedObject]:
    """Track objects through the analysed part of the video and store them in ``analysis.tracks``.

    ``detector`` is anything with ``track(frames) -> per-frame detections`` (for example
    :class:`avsep.inference.detector.YoloDetector`); frames are read again from the video at ``fps``
    and handed over one at a time, so memory does not grow with the video's length or size.
    """
    times = []

    def frames():
        for time, frame in iter_frames(analysis.source, fps, analysis.start, analysis.duration):
            times.append(time)
            yield frame
    detections = detector.track(frames())
    if not times:
        raise AvsepError("no frames to detect objects in")
    analysis.tracks = {
        t.track_id: TrackedObject(t.track_id, t.class_name,
                                  BoxTrack(tuple(times[i] for i in t.frames), tuple(Box(*map(float, b)) for b in t.boxes)),
                                  tuple(float(s) for s in t.scores))
        for t in group_tracks(detections)}
    return analysis.tracks


def describe_objects(analysis: Analysis, hop: float = 0.5) -> tuple[list[dict[str, Any]], np.ndarray]:
    """Each tracked object's stem, loudness over time and sounding decision, and the residual.

    Returns (objects, residual): each object is a dict with ``track`` (the :class:`TrackedObject`),
    ``stem`` (waveform at the input's rate), ``loudness`` ((times, dBFS)), ``mixture_loudness``,
    ``sounding_share`` (the fraction of the video in which it sounds) and ``sounding`` (bool).
    """
    tracks = list(analysis.tracks.values())
    if not tracks:
        return [], analysis.input_mixture.copy()
    stems, residual = analysis.separate_regions([t.boxes for t in tracks], partition=True)
    times, mix_db = analysis.loudness(analysis.input_mixture, hop)
    lengths = analysis.stretch_lengths(len(analysis.input_mixture), hop)
    objects = []
    for track, stem in zip(tracks, stems):
        _, stem_db = analysis.loudness(stem, hop)
        active = (stem_db - mix_db >= SOUNDING_DB) & (mix_db > SILENCE_DBFS)
        share = float(np.average(active, weights=lengths))
        objects.append({"track": track, "stem": stem, "loudness": (times, stem_db), "mixture_loudness": (times, mix_db),
                        "sounding_share": share, "sounding": share >= SOUNDING_FRACTION})
    return objects, residual


def object_record(obj: dict[str, Any], stem_file: str | None = None) -> dict[str, Any]:
    """What ``objects.json`` says of one object: plain numbers, boxes over time as [t, x0, y0, x1, y1]."""
    track: TrackedObject = obj["track"]
    times, levels = obj["loudness"]
    return {
        "track_id": track.track_id, "class": track.class_name, "stem": stem_file,
        "boxes": [[round(t, 3), *(round(v, 1) for v in (b.x0, b.y0, b.x1, b.y1))]
                  for t, b in zip(track.boxes.times, track.boxes.boxes)],
        "scores": [round(s, 3) for s in track.scores],
        "loudness": {"times": [round(float(t), 3) for t in times], "dbfs": [round(float(v), 2) for v in levels]},
        "sounding_share": round(obj["sounding_share"], 3), "sounding": bool(obj["sounding"]),
    }
