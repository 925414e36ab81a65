"""A video of where the sound comes from: the sound-energy heatmap over every frame, tracked
objects' boxes coloured by how loud each one is at that moment, and the original audio."""
from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Iterable, Iterator, Sized

import numpy as np
from PIL import Image, ImageDraw

from avsep.data.encode import write_mp4
from avsep.errors import AvsepError
from avsep.utils import atomic_path
from avsep.viz.images import colorize, heatmap_overlay


def loudness_colour(db_below_mixture: float) -> tuple[int, int, int]:
    """Box colour from how far an object's level is below the mixture's: red when it holds the
    sound, through yellow, to grey when it is 30 dB down or more."""
    value = float(np.clip(1.0 + db_below_mixture / 30.0, 0.0, 1.0))
    if value <= 0.0:
        return (128, 128, 128)
    rgb = np.asarray(colorize(np.array([[value]]), cmap="magma", vmin=0.0, vmax=1.0))[0, 0]
    return tuple(int(c) for c in rgb)


def draw_objects(frame: Image.Image, objects: list[dict], time: float, scale: float) -> None:
    """Draw each object's box at ``time`` (pixels of the original frame times ``scale``), in place."""
    draw = ImageDraw.Draw(frame)
    for obj in objects:
        box = obj["track"].boxes.at(time)
        times, levels = obj["loudness"]
        level = float(np.interp(time, times, levels)) - float(np.interp(time, *obj["mixture_loudness"]))
        colour = loudness_colour(level)
        xy = [box.x0 * scale, box.y0 * scale, box.x1 * scale, box.y1 * scale]
        draw.rectangle(xy, outline=colour, width=3)
        draw.text((xy[0] + 4, xy[1] + 2), f"#{obj['track'].track_id} {obj['track'].class_name}", fill=colour)


# Maps are made anew this many times a second. A map at t covers the second of sound around t,
# so it changes with t even where the analysed frame and the audio window stay the same; drawn
# anew for every video frame, a 60 s video at 25 fps would cost 1,500 maps instead of 240.
MAP_REFRESH_HZ = 4.0


def heatmap_frames(analysis, frames, objects: list[dict] | None = None, alpha: float = 0.5) -> Iterator[np.ndarray]:
    """Overlay the energy map of each (time, frame) pair; yields (H, W, 3) uint8 arrays.

    The map is the one at the first time of its quarter second (:data:`MAP_REFRESH_HZ`), or anew
    wherever the analysed frame or the audio window changes."""
    cache: dict[tuple[int, int, int], np.ndarray] = {}
    for time, frame in frames:
        key = (*analysis.frame_and_window(time), math.floor(time * MAP_REFRESH_HZ))
        if key not in cache:
            cache.clear()  # times only grow: an earlier map is not asked for again
            cache[key] = analysis.energy_map(time, resolution="grid")
        image = heatmap_overlay(frame, np.clip(cache[key], 0.0, 1.0), alpha=alpha)
        if objects:
            draw_objects(image, objects, time, frame.width / analysis.frame_size[0])
        yield np.asarray(image)


def write_heatmap_video(analysis, path: str | Path, frames: Iterable[tuple[float, Image.Image]], fps: float,
                        objects: list[dict] | None = None, audio: np.ndarray | None = None) -> Path:
    """Encode the heatmap video of ``frames`` ((time, PIL image) pairs of one size, every 1/fps
    seconds of the analysis) with the audio (the analysis's own mixture by default), atomically.

    ``frames`` may be an iterator (such as :func:`avsep.inference.media.iter_frames`): frames are
    drawn and encoded one at a time, so memory does not grow with the video's length.
    """
    path = Path(path)
    count = len(frames) if isinstance(frames, Sized) else max(1, math.ceil(analysis.duration * fps - 1e-9))
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise AvsepError(f"{path}: no frames to draw the heatmap on")
    width, height = first[1].size
    even = (width - width % 2, height - height % 2)
    cropped = ((t, f if f.size == even else f.crop((0, 0) + even)) for t, f in itertools.chain([first], frames))
    audio = analysis.input_mixture if audio is None else audio
    with atomic_path(path) as tmp:
        write_mp4(tmp, heatmap_frames(analysis, cropped, objects), even, fps, audio, analysis.input_rate, count,
                  threads=0)
    return path
