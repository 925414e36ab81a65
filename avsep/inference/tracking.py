"""Following objects over the frames of a video: ultralytics' trackers, and tracks as objects.

``YoloDetector.track`` gives one list of ``Detection`` per frame; ``group_tracks`` turns that
into one ``Track`` per physical object (its boxes frame by frame, and the box covering it over the
whole video), which is what a separated stem is made for.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Optional, Sequence

import numpy as np

from avsep.errors import AvsepError

if TYPE_CHECKING:  # at run time detector imports this module, not the other way round
    from avsep.inference.detector import Detection

Box = tuple[float, float, float, float]


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes (x1/y1 exclusive); 0 if disjoint."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union)


@dataclass
class Track:
    """One physical object over a video: the frames (indices, increasing) it was tracked in,
    with its box ``(x0, y0, x1, y1)`` in pixels and score in each; ``class_name`` is the class
    it was given most often."""

    track_id: int
    class_name: str
    frames: list[int] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)

    @property
    def union_box(self) -> Box:
        """The smallest box holding every box of the track: where the object was, in any frame."""
        b = np.asarray(self.boxes, dtype=float)
        return float(b[:, 0].min()), float(b[:, 1].min()), float(b[:, 2].max()), float(b[:, 3].max())

    def box_at(self, frame: int) -> Optional[Box]:
        """The box in frame ``frame``, or ``None`` where the object was not tracked."""
        try:
            return self.boxes[self.frames.index(frame)]
        except ValueError:
            return None


def group_tracks(per_frame: Sequence[Sequence[Detection]]) -> list[Track]:
    """One ``Track`` per track id of ``per_frame`` (the output of ``track``), in order of first
    appearance; detections without a track id are left out."""
    tracks: dict[int, Track] = {}
    names: dict[int, Counter] = {}
    for i, detections in enumerate(per_frame):
        for det in detections:
            if det.track_id is None:
                continue
            track = tracks.setdefault(det.track_id, Track(det.track_id, det.class_name))
            track.frames.append(i)
            track.boxes.append(det.box)
            track.scores.append(det.score)
            names.setdefault(det.track_id, Counter())[det.class_name] += 1
    for track_id, track in tracks.items():
        track.class_name = names[track_id].most_common(1)[0][0]
    return list(tracks.values())


def check_tracker(tracker: str) -> str:
    """The path of an ultralytics tracker config (``bytetrack.yaml``, ``botsort.yaml`` or a file);
    a one-line AvsepError if ultralytics cannot find it. Needs ultralytics imported."""
    from ultralytics.utils.checks import check_yaml

    try:
        return str(check_yaml(tracker))
    except Exception:  # FileNotFoundError, or whatever a malformed name makes ultralytics raise
        raise AvsepError(f"tracker {tracker!r}: no such ultralytics tracker config "
                         "(try bytetrack.yaml or botsort.yaml, or a path to a .yaml file)") from None


def track_frames(model: Any, frames: Iterable[np.ndarray], tracker: str, options: dict[str, Any]) -> Iterator[Any]:
    """ultralytics ``Results`` of each BGR uint8 ``(H, W, 3)`` frame of one video, tracked by
    ``model`` (an ultralytics ``YOLO``) with the ``tracker`` config, yielded as they come.

    Frames go one at a time with ``persist=True`` so the tracker carries its state from frame to
    frame; the state left by the previous video is cleared first, so ids restart at 1. A
    ``Results`` keeps its frame: take what you need from each and let it go, so that memory does
    not grow with the video's length.
    """
    predictor = getattr(model, "predictor", None)
    for state in getattr(predictor, "trackers", None) or []:
        state.reset()
    for frame in frames:
        yield model.track(frame, persist=True, tracker=tracker, **options)[0]
