"""The frames of an analysed video, decoded again when they are needed (detection, heatmap videos),
so that an analysis never holds full-size frames."""
from __future__ import annotations

from typing import Iterator

from PIL import Image

from avsep.data.decode import read_frames
from avsep.errors import AvsepError


def iter_frames(source, fps: float, start: float = 0.0, duration: float | None = None,
                max_side: int | None = None) -> Iterator[tuple[float, Image.Image]]:
    """(time, frame) pairs every 1/fps seconds of [start, start + duration], times counted from ``start``.

    ``source`` is a video path or a :class:`avsep.inference.VideoClip`. Frames are RGB PIL images,
    shrunk so that their longer side is at most ``max_side`` (None: full size).
    """
    if source is None:
        raise AvsepError("this analysis has no video to read frames from")
    if hasattr(source, "frames"):
        frames = (_image(source.frames[min(len(source.frames) - 1, round((start + k / fps) * source.fps))])
                  for k in range(int(((duration or len(source.frames) / source.fps - start)) * fps)))
    else:
        frames = read_frames(source, fps, short_side=None, start=start)
    for k, frame in enumerate(frames):
        time = k / fps
        if duration is not None and time >= duration:
            return
        if max_side and max(frame.size) > max_side:
            scale = max_side / max(frame.size)
            frame = frame.resize((max(2, round(frame.width * scale)), max(2, round(frame.height * scale))),
                                 Image.BILINEAR)
        yield time, frame


def _image(frame) -> Image.Image:
    import numpy as np

    return frame if isinstance(frame, Image.Image) else Image.fromarray(np.asarray(frame, dtype=np.uint8))
