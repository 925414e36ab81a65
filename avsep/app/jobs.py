"""The analysis queue: one analysis at a time, in a worker thread, with its progress for the page.

An analysis holds the video's network features in memory (about 70 MB a minute of video at the
``small`` preset, 200 MB at ``sop``: docs/benchmarks.md) and needs more while it runs, so running several at once on
a small machine would only make them all slower and risk running out of memory. Requests are
queued instead: at most ``max_pending`` wait (more are refused with a clear message), one runs,
and the ``keep`` most recently used analyses stay in memory for instant queries (older ones are
dropped and analysed again if asked for).
"""
from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from avsep.errors import AvsepError
from avsep.inference.analysis import Analysis
from avsep.inference.separator import Separator

log = logging.getLogger("avsep")


class ReportingSeparator(Separator):
    """A Separator whose :meth:`analyze` also reports its progress to ``self.report(fraction)``.

    ``Separator.analyze`` only draws a tqdm bar; the two steps that advance it receive the bar as
    an argument, so they are given one that also reports. (A ``progress=callable`` option in
    ``Separator.analyze`` would make this subclass unnecessary.)
    """
    report: Optional[Callable[[float], None]] = None
    _done = 0

    def analyze(self, *args, **kwargs) -> Analysis:
        self._done = 0
        return super().analyze(*args, **kwargs)

    def _audio_features(self, mixture, starts, bar):
        return super()._audio_features(mixture, starts, _ReportingBar(bar, self._advance))

    def _visual_grids(self, frames, fps, wanted, bar, fine):
        return super()._visual_grids(frames, fps, wanted, _ReportingBar(bar, self._advance), fine)

    def _advance(self, steps: int, total: int | None) -> None:
        self._done += steps
        if self.report is not None and total:
            self.report(min(1.0, self._done / total))


class _ReportingBar:
    """Forwards to a tqdm bar, and its steps to ``advance(steps, total)`` (a disabled tqdm bar
    keeps its total but does not count)."""

    def __init__(self, bar, advance: Callable[[int, Optional[int]], None]):
        self.bar, self.advance = bar, advance

    def update(self, n: int = 1) -> None:
        self.bar.update(n)
        self.advance(n, getattr(self.bar, "total", None))


@dataclass
class Job:
    """One video's analysis, as the page sees it."""
    video_id: str
    path: Path
    preview: Optional[Path] = None     # where to write a browser-playable copy, if one is needed
    state: str = "queued"              # queued, running, done, error
    stage: str = "waiting for the analyses before it"
    fraction: float = 0.0
    error: str = ""
    analysis: Optional[Analysis] = None
    page: dict = field(default_factory=dict)
    submitted: float = field(default_factory=time.monotonic)
    started: float = 0.0


class AnalysisQueue:
    """Runs analyses one after another in a worker thread; see the module docstring.

    ``make_detector`` builds the object detector in the worker thread (importing ultralytics
    takes seconds); it returns the detector, or raises AvsepError saying why there is none.
    """

    def __init__(self, separator: ReportingSeparator, make_detector: Optional[Callable[[], object]] = None,
                 max_pending: int = 4, keep: int = 4):
        self.separator, self.make_detector = separator, make_detector
        self.max_pending, self.keep = max_pending, keep
        self.detector, self.detector_note = None, "object detection is off (--no-detect)"
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._queue: queue.Queue = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="avsep-analysis", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to stop after its current step; an analysis under way is abandoned."""
        self._queue.put(None)
        self._thread.join(timeout)

    # --- the page's side -----------------------------------------------------------------------
    def submit(self, video_id: str, path: Path, preview: Optional[Path] = None) -> Job:
        """Queue a video (or return its job if it is queued, running or done)."""
        with self._lock:
            job = self._jobs.get(video_id)
            if job is not None and job.state != "error":
                self._jobs.move_to_end(video_id)
                return job
            waiting = sum(1 for j in self._jobs.values() if j.state == "queued")
            if waiting >= self.max_pending:
                raise AvsepError(f"{waiting} analyses are already waiting (the limit is {self.max_pending}); "
                                 "try again when one is done")
            job = self._jobs[video_id] = Job(video_id, path, preview)
        self._queue.put(job)
        return job

    def status(self, video_id: str) -> dict:
        with self._lock:
            job = self._jobs.get(video_id)
            if job is None:
                return {"state": "none"}
            ahead = sum(1 for j in self._jobs.values() if j.state == "queued" and j.submitted < job.submitted)
            busy = any(j.state == "running" for j in self._jobs.values())
        out = {"state": job.state, "stage": job.stage, "fraction": round(job.fraction, 3), "error": job.error}
        if job.state == "queued":
            out["stage"] = (f"waiting: {ahead} analysis(es) before it" if ahead else
                            "waiting for the current analysis" if busy else "starting")
        return out

    def done(self, video_id: str) -> Job:
        """The finished job of a video (and mark it recently used); AvsepError if there is none."""
        with self._lock:
            job = self._jobs.get(video_id)
            if job is None or job.state != "done":
                raise AvsepError("this video is not analysed (yet): open it again")
            self._jobs.move_to_end(video_id)
            return job

    def forget(self, video_id: str) -> None:
        with self._lock:
            self._jobs.pop(video_id, None)

    # --- the worker's side ---------------------------------------------------------------------
    def _work(self) -> None:
        self._load_detector()
        while True:
            job = self._queue.get()
            if job is None:
                return
            with self._lock:
                if self._jobs.get(job.video_id) is not job:
                    continue  # forgotten while it waited
            try:
                self._run(job)
                job.state, job.stage, job.fraction = "done", "ready", 1.0
                log.info("analysed %s in %.1f s", job.path.name, time.monotonic() - job.started)
            except Exception as err:  # noqa: BLE001 - a failed analysis must not stop the worker
                job.state, job.error = "error", str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                log.warning("analysis of %s failed: %s", job.path.name, job.error)
                if not isinstance(err, AvsepError):
                    log.debug("analysis failure", exc_info=True)
            self._evict()

    def _load_detector(self) -> None:
        if self.make_detector is None:
            return
        try:
            self.detector, self.detector_note = self.make_detector(), ""
        except AvsepError as err:
            self.detector_note = f"no object boxes: {err}"
            log.warning("%s", self.detector_note)

    def _run(self, job: Job) -> None:
        from avsep.app.media import write_preview
        from avsep.inference.objects import describe_objects, detect_objects

        job.state, job.started = "running", time.monotonic()
        if job.preview is not None and not job.preview.exists():
            job.stage = "making a copy the browser can play"
            write_preview(job.path, job.preview, {"fps": 25.0, **_probe(job.path)})
        job.stage = "analysing sound and pictures"
        self.separator.report = lambda fraction: setattr(job, "fraction", 0.9 * fraction)
        try:
            analysis = self.separator.analyze(job.path, progress=False)
        finally:
            self.separator.report = None
        job.stage, job.fraction = "sound heatmaps", 0.9
        page = {"heat": heat_maps(analysis)}
        objects, note = [], self.detector_note
        if self.detector is not None:
            job.stage, job.fraction = "detecting objects", 0.93
            detect_objects(analysis, self.detector)
            objects = [object_json(o) for o in describe_objects(analysis)[0]]
            note = "" if objects else "the detector found no objects in this video"
        page.update(objects=objects, objects_note=note)
        job.analysis, job.page = analysis, page

    def _evict(self) -> None:
        with self._lock:
            finished = [vid for vid, j in self._jobs.items() if j.state == "done"]
            for vid in finished[:max(0, len(finished) - self.keep)]:
                log.info("dropping the analysis of %s from memory (--keep-analyses %d)", self._jobs[vid].path.name,
                         self.keep)
                del self._jobs[vid]


def _probe(path: Path) -> dict:
    from avsep.data.decode import probe

    return {k: v for k, v in probe(path).items() if v}


def heat_maps(analysis: Analysis) -> dict:
    """Grid-resolution energy maps at every analysed frame, for the page's overlay: uint8 in
    base64, stretched so that the 2nd to 99.5th percentile of the whole video's sounding moments
    spans 0-255 (raw shares are low and similar everywhere; what matters is where it is louder than
    elsewhere); silent moments stay 0."""
    times, maps = analysis.energy_maps(resolution="grid")
    sounding = maps[maps.reshape(len(maps), -1).any(axis=1)] if maps.size else maps
    # Silent moments map to exactly zero (Analysis.energy_map): left out of the stretch, or a
    # silent intro would pull its low end to zero and leave the sounding frames evenly bright.
    low, high = np.percentile(sounding, [2.0, 99.5]) if sounding.size else (0.0, 1.0)
    scaled = np.clip((maps - low) / max(high - low, 1e-9), 0.0, 1.0)
    data = np.round(scaled * 255).astype(np.uint8)
    return {"times": [round(float(t), 3) for t in times], "rows": int(maps.shape[1]), "cols": int(maps.shape[2]),
            "data": base64.b64encode(data.tobytes()).decode("ascii")}


def object_json(obj: dict) -> dict:
    """A tracked object for the page: id, class, whether it sounds, and its boxes over time."""
    track = obj["track"]
    return {"id": track.track_id, "class": track.class_name, "sounding": bool(obj["sounding"]),
            "times": [round(float(t), 3) for t in track.boxes.times],
            "boxes": [[round(v, 1) for v in (b.x0, b.y0, b.x1, b.y1)] for b in track.boxes.boxes]}
