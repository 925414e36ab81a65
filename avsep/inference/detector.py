"""Find sounding objects (instruments) in video frames, and follow each one with a track id.

A user clicks an object in a video to hear it; the detector proposes the objects and the tracker
gives each physical object one id over the whole video, so that each tracked object can get its
own separated stem::

    from avsep.inference.detector import YoloDetector
    det = YoloDetector()                       # yolov8s-oiv7.pt: 601 Open Images V7 classes
    per_frame = det.track(frames)              # frames: RGB uint8 (H, W, 3) arrays or PIL images
    per_frame[0][0]                            # Detection(box=(x0, y0, x1, y1), score, class_name, track_id)

``YoloDetector`` wraps ultralytics (AGPL-3.0), an optional extra: ``pip install 'avsep[detect]'``.
ultralytics is imported lazily, inside this module's functions only. The MUSIC / MUSIC-21 labels
are mapped to Open Images V7 class names by ``MUSIC_TO_OIV7``; see docs/detector.md.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional, Protocol, Sequence, Union, runtime_checkable

import numpy as np
from PIL import Image

from avsep.errors import AvsepError
from avsep.inference.tracking import check_tracker, track_frames

log = logging.getLogger("avsep")

# Open Images V7 YOLOv8 "small": 27.7 mAP on OIV7 val against 18.4 for "nano", for 1.3x its CPU
# time (183 vs 142 ms a 640 px frame, ultralytics' ONNX figures); m/l/x gain less per second.
DEFAULT_WEIGHTS = "yolov8s-oiv7.pt"
INSTALL_HINT = "pip install 'avsep[detect]'"
WEIGHTS_RELEASES = "https://github.com/ultralytics/assets/releases"

# Every musical-instrument class of Open Images V7 (ultralytics/cfg/datasets/open-images-v7.yaml).
OIV7_INSTRUMENTS: tuple[str, ...] = (
    "Accordion", "Banjo", "Cello", "Chime", "Drum", "Flute", "French horn", "Guitar", "Harmonica",
    "Harp", "Harpsichord", "Maracas", "Musical instrument", "Musical keyboard", "Oboe",
    "Organ (Musical Instrument)", "Piano", "Saxophone", "Trombone", "Trumpet", "Violin",
)

# MUSIC (first 11) and MUSIC-21 labels -> the Open Images V7 class that a detector trained on OIV7
# gives that instrument, or None where OIV7 has no such class (OIV7's generic "Musical instrument"
# class may still find those). Guitar-shaped instruments all land in "Guitar", congas in "Drum".
MUSIC_TO_OIV7: dict[str, Optional[str]] = {
    "accordion": "Accordion",
    "acoustic_guitar": "Guitar",
    "cello": "Cello",
    "clarinet": None,
    "erhu": None,
    "flute": "Flute",
    "saxophone": "Saxophone",
    "trumpet": "Trumpet",
    "tuba": None,
    "violin": "Violin",
    "xylophone": None,
    "bagpipe": None,
    "banjo": "Banjo",
    "bassoon": None,
    "congas": "Drum",
    "drum": "Drum",
    "electric_bass": "Guitar",
    "guzheng": None,
    "piano": "Piano",
    "pipa": None,
    "ukulele": "Guitar",
}
MUSIC_UNMAPPED: tuple[str, ...] = tuple(label for label, name in MUSIC_TO_OIV7.items() if name is None)

Frame = Union[np.ndarray, Image.Image]


@dataclass(frozen=True)
class Detection:
    """One object in one frame.

    ``box`` is ``(x0, y0, x1, y1)`` in pixels of the original frame, x1/y1 exclusive (the box
    covers ``[x0, x1) x [y0, y1)``); ``score`` is the detector's confidence in [0, 1];
    ``track_id`` is the same for one physical object over a video (``None`` from ``detect``).
    """

    box: tuple[float, float, float, float]
    score: float
    class_name: str
    track_id: Optional[int] = None

    @property
    def center(self) -> tuple[float, float]:
        """``(x, y)`` of the box centre in pixels."""
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


@runtime_checkable
class Detector(Protocol):
    """What the rest of avsep needs from a detector; frames are RGB uint8 ``(H, W, 3)`` arrays or
    PIL images of any size and aspect, and both methods return one list per frame."""

    def detect(self, frames: Iterable[Frame]) -> list[list[Detection]]:
        """Objects in each frame independently; ``track_id`` is ``None``."""
        ...

    def track(self, frames: Iterable[Frame]) -> list[list[Detection]]:
        """Objects in consecutive frames of one video, each physical object with one ``track_id``."""
        ...


def oiv7_class(label: str) -> Optional[str]:
    """The Open Images V7 class of a MUSIC label, ``None`` if it has none; unknown labels raise."""
    try:
        return MUSIC_TO_OIV7[label]
    except KeyError:
        raise AvsepError(f"{label!r} is not a MUSIC label (known: {', '.join(MUSIC_TO_OIV7)})") from None


def music_labels(class_name: str) -> tuple[str, ...]:
    """The MUSIC labels whose OIV7 class is ``class_name`` (any case); empty for other classes."""
    key = class_name.casefold()
    return tuple(label for label, name in MUSIC_TO_OIV7.items() if name and name.casefold() == key)


# -- ultralytics: environment, lazy import, weights ----------------------------------------------

def cache_dir() -> Path:
    """Where avsep keeps detector weights and ultralytics' settings: ``$AVSEP_CACHE_DIR`` or
    ``$XDG_CACHE_HOME/avsep`` (default ``~/.cache/avsep``)."""
    if os.environ.get("AVSEP_CACHE_DIR"):
        return Path(os.environ["AVSEP_CACHE_DIR"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "avsep"


def weights_dir() -> Path:
    """Where a bare weights name such as ``yolov8s-oiv7.pt`` is looked for and downloaded to."""
    return cache_dir() / "detector"


def _truthy(value: Optional[str]) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on", "y", "t"}


def _prepare_environment() -> None:
    """Settings ultralytics reads once, when it is imported: so set them before that."""
    # A library must never pip-install packages behind the user's back.
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    # Our own settings dir: writable, and changing its telemetry flag touches no one else's.
    os.environ.setdefault("YOLO_CONFIG_DIR", str(cache_dir() / "ultralytics"))
    # Older ultralytics honour YOLO_OFFLINE only as the exact string "true".
    if _truthy(os.environ.get("YOLO_OFFLINE")):
        os.environ["YOLO_OFFLINE"] = "true"


def import_ultralytics() -> Any:
    """The ``ultralytics`` module, with avsep's environment; a one-line AvsepError without it."""
    _prepare_environment()
    try:
        module = importlib.import_module("ultralytics")
    except ModuleNotFoundError as e:
        if e.name != "ultralytics":
            raise AvsepError(f"ultralytics is installed but lacks a requirement ({_first_line(e)}): "
                             f"{INSTALL_HINT}") from None
        raise AvsepError(f"object detection needs ultralytics, which is not installed: {INSTALL_HINT}") from None
    except ImportError as e:
        # Typically opencv-python without libGL: the headless OpenCV build is what avsep wants.
        raise AvsepError(f"ultralytics is installed but cannot be imported ({_first_line(e)}); with libGL "
                         "missing, replace opencv-python by opencv-python-headless (docs/detector.md)") from None
    if os.environ["YOLO_CONFIG_DIR"] == str(cache_dir() / "ultralytics"):
        # No usage analytics from avsep's runs (only in avsep's own settings file).
        from ultralytics.utils import SETTINGS
        if SETTINGS.get("sync"):
            SETTINGS.update(sync=False)
    return module


def is_offline(timeout: float = 3.0) -> bool:
    """True if ``$YOLO_OFFLINE`` says so or GitHub cannot be reached within ``timeout`` seconds.

    The probe runs in a daemon thread because a DNS lookup ignores socket timeouts and can hang.
    """
    if _truthy(os.environ.get("YOLO_OFFLINE")):
        return True
    reached = threading.Event()

    def probe() -> None:
        try:
            socket.create_connection(("github.com", 443), timeout=timeout).close()
            reached.set()
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)  # returns as soon as the probe succeeds or fails
    return not reached.is_set()


def resolve_weights(weights: Union[str, os.PathLike]) -> Path:
    """A local ``.pt`` file for ``weights``: a path, or a bare ultralytics asset name (such as
    ``yolov8s-oiv7.pt``) looked for here, in ``weights_dir()``, and else downloaded there.

    Raises a one-line AvsepError for a missing file, or when the asset cannot be downloaded.
    """
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    if path.name != str(weights):
        raise AvsepError(f"detector weights {str(weights)!r}: no such file")
    cached = weights_dir() / path.name
    if cached.is_file():
        return cached
    return _download(path.name, cached)


def _download(name: str, dest: Path) -> Path:
    """Download the ultralytics asset ``name`` to ``dest``, failing fast when offline."""
    hint = f"download {name} from {WEIGHTS_RELEASES} on a machine with network, then pass --detector PATH"
    offline = is_offline()
    if offline:
        os.environ.setdefault("YOLO_OFFLINE", "true")  # so ultralytics skips its own online checks
    import_ultralytics()
    downloads = importlib.import_module("ultralytics.utils.downloads")
    if name not in downloads.GITHUB_ASSETS_NAMES:
        raise AvsepError(f"detector weights {name!r}: no such file (nor an ultralytics model name)")
    if offline:
        raise AvsepError(f"detector weights {name} are not on this machine and cannot be downloaded "
                         f"(offline): {hint}, or put it in {weights_dir()}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading detector weights %s to %s", name, dest)
    try:
        downloads.attempt_download_asset(str(dest), retry=1)
    except Exception as e:  # ultralytics raises ConnectionError, OSError, HTTP errors...
        raise AvsepError(f"could not download detector weights {name} ({_first_line(e)}): {hint}") from None
    if not dest.is_file():
        raise AvsepError(f"could not download detector weights {name}: {hint}")
    return dest


def _to_bgr(frame: Frame) -> np.ndarray:
    """An RGB uint8 ``(H, W, 3)`` array or PIL image as the contiguous BGR array ultralytics
    expects of numpy input (it follows OpenCV's channel order)."""
    if isinstance(frame, Image.Image):
        frame = np.asarray(frame.convert("RGB"))
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        what = f"{frame.dtype} array of shape {frame.shape}" if isinstance(frame, np.ndarray) else type(frame).__name__
        raise AvsepError(f"a frame must be an RGB uint8 (H, W, 3) array or a PIL image, not a {what}")
    return np.ascontiguousarray(frame[..., ::-1])


# -- the detector --------------------------------------------------------------------------------

class YoloDetector:
    """An ultralytics YOLO detector with ultralytics' own multi-object tracker.

    ``weights``: a ``.pt`` file, or an ultralytics model name (downloaded to ``weights_dir()``).
    ``device``: ``cpu``, ``cuda``, ``cuda:1``... ``conf``: lowest score ``detect`` returns.
    ``classes``: keep only these classes, given as the model's class names (any case) or MUSIC
    labels (mapped by ``MUSIC_TO_OIV7``); ``None`` keeps all. ``tracker``: ultralytics tracker
    config, ``bytetrack.yaml`` (motion only) or ``botsort.yaml``, or a path to one.
    ``imgsz``: network input side in pixels; ``None`` uses the size the model was trained at.
    ``batch``: frames per forward pass in ``detect``.
    """

    def __init__(self, weights: Union[str, os.PathLike] = DEFAULT_WEIGHTS, device: str = "cpu",
                 conf: float = 0.25, classes: Optional[Iterable[str]] = None,
                 tracker: str = "bytetrack.yaml", imgsz: Optional[int] = None, iou: float = 0.7,
                 batch: int = 8):
        self.weights = resolve_weights(weights)
        ultralytics = import_ultralytics()
        try:
            self.model = ultralytics.YOLO(str(self.weights), task="detect")
            # Reading the class names loads the weights: a file of another format fails only here.
            self.names: tuple[str, ...] = tuple(self.model.names[i] for i in sorted(self.model.names))
        except Exception as e:  # a truncated download, a non-YOLO file, a newer checkpoint format...
            raise AvsepError(f"detector weights {self.weights}: cannot load ({_first_line(e)})") from None
        self.class_ids = None if classes is None else class_ids(classes, self.names)
        self.tracker = check_tracker(tracker)
        self.device, self.conf, self.imgsz, self.iou, self.batch = device, conf, imgsz, iou, max(1, batch)

    def _options(self, conf: float) -> dict[str, Any]:
        """Keyword arguments shared by ultralytics' predict and track."""
        opts = dict(conf=conf, iou=self.iou, device=self.device, classes=self.class_ids, verbose=False, save=False)
        if self.imgsz is not None:
            opts["imgsz"] = self.imgsz
        return opts

    def detect(self, frames: Iterable[Frame]) -> list[list[Detection]]:
        """Objects in each frame independently, best score first; ``track_id`` is ``None``."""
        out: list[list[Detection]] = []
        for chunk in _chunks((_to_bgr(f) for f in frames), self.batch):
            with _torch_threads_kept():
                results = self.model.predict(chunk, **self._options(self.conf))
            out += [_detections(r, tracked=False) for r in results]
        return out

    def track(self, frames: Iterable[Frame]) -> list[list[Detection]]:
        """Objects in consecutive frames of one video; each physical object keeps one ``track_id``
        (ids start at 1 for each call). Frames go to the tracker one at a time, in order.

        The tracker gets detections down to score 0.1 whatever ``conf`` is, because ByteTrack
        uses its low-score ones to keep a track through blur or partial occlusion; a returned
        detection can therefore score below ``conf``. An object shows up from the frame its
        track is confirmed (ByteTrack: the first frame, or two consecutive frames later on).
        """
        with _torch_threads_kept():
            results = track_frames(self.model, (_to_bgr(f) for f in frames), self.tracker,
                                   self._options(min(self.conf, 0.1)))
            return [_detections(r, tracked=True) for r in results]


def class_ids(classes: Iterable[str], names: Sequence[str]) -> list[int]:
    """Indices into the model's ``names`` of ``classes``: class names (any case) or MUSIC labels."""
    index = {name.casefold(): i for i, name in enumerate(names)}
    ids = []
    for wanted in [classes] if isinstance(classes, str) else classes:
        # The model's own names first: a custom model may have a class called "drum" too.
        name = wanted if wanted.casefold() in index else MUSIC_TO_OIV7.get(wanted, wanted)
        if name is None:
            raise AvsepError(f"MUSIC label {wanted!r} has no Open Images V7 class "
                             f"(unmapped: {', '.join(MUSIC_UNMAPPED)})")
        if name.casefold() not in index:
            raise AvsepError(f"class {wanted!r} is not one of the detector's {len(names)} classes "
                             f"({', '.join(names[:8])}{', ...' if len(names) > 8 else ''})")
        ids.append(index[name.casefold()])
    return sorted(set(ids))


@contextlib.contextmanager
def _torch_threads_kept() -> Iterator[None]:
    """Undo ultralytics' ``torch.set_num_threads`` (it sets CPU cores - 1, at most 8, when it
    picks a device), which would otherwise slow down everything avsep does afterwards."""
    import torch  # already imported by ultralytics

    threads = torch.get_num_threads()
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _chunks(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    """Consecutive lists of ``size`` items (the last one shorter), without reading ahead."""
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _first_line(error: BaseException) -> str:
    """An exception as one line, for AvsepError messages (ultralytics' often span several); a
    long line is cut at its first sentence (a list of every supported format follows it)."""
    line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return line.split(". ")[0] if len(line) > 200 else line


def _detections(result: Any, tracked: bool) -> list[Detection]:
    """An ultralytics ``Results`` of one frame as Detections, best score first."""
    boxes = result.boxes
    # In track mode, boxes without ids are detections the tracker did not take (too weak to
    # start a track): they are no tracked object, so they are left out.
    if boxes is None or len(boxes) == 0 or (tracked and boxes.id is None):
        return []
    xyxy = boxes.xyxy.cpu().numpy().astype(float)
    scores = boxes.conf.cpu().numpy().astype(float)
    cls = boxes.cls.cpu().numpy().astype(int)
    ids = boxes.id.cpu().numpy().astype(int) if tracked else [None] * len(scores)
    dets = [Detection(tuple(float(v) for v in b), float(s), str(result.names[c]), None if t is None else int(t))
            for b, s, c, t in zip(xyxy, scores, cls, ids)]
    return sorted(dets, key=lambda d: -d.score)
