"""What a user can point at: a pixel, a box, or a box that moves over time; and the grid cells
each one selects.

Coordinates are pixels of the original frame, x to the right and y down, (0, 0) the top-left
corner. The vision network sees the frame scaled so that its shorter side is ``img_size`` and
returns one visual vector per ``visual_stride`` pixels of that scaled frame: an h x w grid whose
cell (i, j) covers exactly ``[j * W / w, (j + 1) * W / w) x [i * H / h, (i + 1) * H / h)`` of a
W x H frame (:func:`avsep.dsp.inputs.scaled_size` makes the scaled size a whole number of cells).
A point selects the cell under it (and its neighbours within ``radius`` cells); a box selects
every cell whose centre lies inside it, or the cell under its centre if none does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from avsep.errors import AvsepError


@dataclass(frozen=True)
class Point:
    """A pixel (x, y) of the frame."""
    x: float
    y: float


@dataclass(frozen=True)
class Box:
    """A rectangle [x0, x1) x [y0, y1) in pixels of the frame."""
    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def centre(self) -> Point:
        return Point((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)


@dataclass(frozen=True)
class BoxTrack:
    """A box that moves: ``boxes[k]`` holds from ``times[k]`` (seconds) until the next time.

    Before the first time the first box holds, after the last one the last box.
    """
    times: tuple
    boxes: tuple

    @classmethod
    def from_pairs(cls, pairs: Sequence[tuple[float, Box | Sequence[float]]]) -> "BoxTrack":
        """From ``(time, box)`` pairs in any order; a box may be a Box or (x0, y0, x1, y1)."""
        if not pairs:
            raise AvsepError("boxes_over_time: give at least one (time, box) pair")
        ordered = sorted(pairs, key=lambda pair: pair[0])
        return cls(tuple(float(t) for t, _ in ordered),
                   tuple(b if isinstance(b, Box) else Box(*map(float, b)) for _, b in ordered))

    def at(self, time: float) -> Box:
        k = int(np.searchsorted(np.asarray(self.times), time, side="right")) - 1
        return self.boxes[max(0, k)]


Region = Union[Point, Box, BoxTrack]


def as_region(region: "Region | Sequence[float]") -> Region:
    """A region as given, or one made from plain numbers: (x, y) is a Point, (x0, y0, x1, y1) a
    Box; anything else is a one-line :class:`AvsepError`."""
    if isinstance(region, (Point, Box, BoxTrack)):
        return region
    try:
        values = [] if isinstance(region, (str, bytes)) else [float(v) for v in region]
    except (TypeError, ValueError):
        values = []
    if len(values) == 2:
        return Point(*values)
    if len(values) == 4:
        return Box(*values)
    shown = repr(region) if isinstance(region, (str, bytes, tuple, list)) and len(repr(region)) < 60 else \
        f"of type {type(region).__name__}"
    raise AvsepError(f"region {shown}: give a Point, a Box, a BoxTrack, (x, y) or (x0, y0, x1, y1)")


def region_at(region: Region, time: float) -> Point | Box:
    """The point or box a region stands for at ``time`` seconds."""
    return region.at(time) if isinstance(region, BoxTrack) else region


def check_region(region: Region, width: int, height: int) -> None:
    """Raise a one-line :class:`AvsepError` if a region lies outside a ``width`` x ``height`` frame."""
    for shape in (region.boxes if isinstance(region, BoxTrack) else (region,)):
        if isinstance(shape, Point):
            if not (0 <= shape.x < width and 0 <= shape.y < height):
                raise AvsepError(f"point ({shape.x:g}, {shape.y:g}) is outside the {width}x{height} frame")
            continue
        if not (shape.x0 < shape.x1 and shape.y0 < shape.y1):
            raise AvsepError(f"box ({shape.x0:g}, {shape.y0:g}, {shape.x1:g}, {shape.y1:g}) is empty: "
                             "give X0,Y0,X1,Y1 with X0 < X1 and Y0 < Y1")
        if shape.x1 <= 0 or shape.y1 <= 0 or shape.x0 >= width or shape.y0 >= height:
            raise AvsepError(f"box ({shape.x0:g}, {shape.y0:g}, {shape.x1:g}, {shape.y1:g}) is outside the "
                             f"{width}x{height} frame")


def cell_of(point: Point, grid: tuple[int, int], frame: tuple[int, int]) -> tuple[int, int]:
    """The (row, column) of the grid cell under a point; ``grid`` is (h, w), ``frame`` (W, H)."""
    (h, w), (width, height) = grid, frame
    return min(h - 1, max(0, int(point.y * h / height))), min(w - 1, max(0, int(point.x * w / width)))


def cells(shape: Point | Box, grid: tuple[int, int], frame: tuple[int, int], radius: int = 0) -> np.ndarray:
    """Boolean (h, w) selection of the grid cells a point or box stands for (never empty)."""
    (h, w), (width, height) = grid, frame
    selected = np.zeros((h, w), dtype=bool)
    if isinstance(shape, Box):
        centre_x = (np.arange(w) + 0.5) * width / w
        centre_y = (np.arange(h) + 0.5) * height / h
        inside = np.outer((centre_y >= shape.y0) & (centre_y < shape.y1), (centre_x >= shape.x0) & (centre_x < shape.x1))
        if inside.any():
            return inside
        shape = shape.centre
    row, col = cell_of(shape, grid, frame)
    selected[max(0, row - radius):row + radius + 1, max(0, col - radius):col + radius + 1] = True
    return selected
