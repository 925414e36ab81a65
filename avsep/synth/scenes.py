"""Scenes: players holding instruments in a room or in front of a photograph, with clutter.

A scene is drawn on a canvas somewhat larger than the frame; the camera (``camera.py``) frames
part of it. Everything random is drawn when the scene is built, so ``Scene.frames`` is a pure
function: rendering twice, or once with an instrument hidden (as the tests do to find its
pixels), gives identical frames elsewhere. Frames are RGB uint8 ``[H, W, 3]``; sizes are
``(width, height)``; boxes are ``[x0, y0, x1, y1]`` frame pixels with x1/y1 exclusive.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Iterator, Sequence

import numpy as np
from PIL import Image, ImageFilter

from avsep.synth.backgrounds import make_background
from avsep.synth.camera import Grade, Sensor, always_visible, camera_path, canvas_size, random_grade, random_sensor
from avsep.synth.instruments import get_instrument
from avsep.synth.layers import Layer, rocking, rotation_margin, sway, to_frame
from avsep.synth.people import draw_person
from avsep.synth.props import place_clutter
from avsep.synth.sprites import instrument_sprite

SIZE_RANGE = (0.15, 0.6)  # an instrument's longer side, as a fraction of the frame's shorter side
MAX_ANGLE = 5.0  # degrees of rocking
SWAY = 0.03  # amplitude of a player's sway, as a fraction of the frame's shorter side


@dataclass
class Scene:
    """A built scene: the static ``canvas`` (background and clutter behind the players, graded),
    the moving ``layers`` in drawing order (``(source index or -1, layer)``), the ``sources``
    (label and instrument layer per player), the ``camera`` windows ``[T, 4]`` and the
    ``sensor``."""

    size: tuple[int, int]
    canvas: Image.Image
    layers: list[tuple[int, Layer]]
    sources: list[tuple[str, Layer]]
    camera: np.ndarray
    sensor: Sensor

    @property
    def n_frames(self) -> int:
        return len(self.camera)

    def frame(self, i: int, hide: Collection[int] = ()) -> np.ndarray:
        """Frame ``i``, ``[H, W, 3]`` uint8, without the instruments of the sources in ``hide``."""
        img = self.canvas.copy()
        for source, layer in self.layers:
            if source in hide:
                continue
            sprite, pos = layer.at(i)
            img.paste(sprite, pos, sprite)  # unlike alpha_composite, clips at the canvas edges
        return self.sensor.develop(self.sensor.view(img, self.camera[i], self.size), i)

    def frames(self, hide: Collection[int] = ()) -> Iterator[np.ndarray]:
        """All frames in order (see ``frame``)."""
        return (self.frame(i, hide) for i in range(self.n_frames))

    def boxes(self) -> list[list[list[int]]]:
        """Per source, per frame: the box of the instrument's drawn pixels in the frame
        (``[x0, y0, x1, y1]``), grown by the pixels resampling and blur spread them."""
        per_frame = [self.boxes_at(i) for i in range(self.n_frames)]
        return [[boxes[k] for boxes in per_frame] for k in range(len(self.sources))]

    def boxes_at(self, i: int) -> list[list[int]]:
        """Per source, its box in frame ``i`` (``boxes()[k][i]``), for one frame alone: a single
        training frame of a long clip (the test detector's data) needs no other frame's boxes."""
        margin = 1 + self.sensor.spread
        return [to_frame(layer.bbox(i), self.camera[i], self.size, margin) for _, layer in self.sources]


def union_box(boxes: Sequence[Sequence[int]]) -> list[int]:
    """The box around all ``boxes``."""
    b = np.asarray(boxes)
    return [int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())]


def _scaled(img: Image.Image, long_side: float, mirror: bool = False) -> Image.Image:
    scale = long_side / max(img.size)
    out = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)
    return out.transpose(Image.FLIP_LEFT_RIGHT) if mirror else out


def _try_layout(sprites: list[Image.Image], view: tuple[float, float, float, float], margin: float,
                rng: np.random.Generator) -> list[tuple[float, float]] | None:
    """Centres for the sprites inside ``view`` with ``margin`` around each, side by side in a
    row or anywhere, never overlapping; ``None`` when this draw does not fit."""
    x0, y0, x1, y1 = view
    n, row = len(sprites), len(sprites) > 1 and rng.random() < 0.5
    baseline = rng.uniform(y0, y1)
    placed: list[tuple[float, float, float, float]] = []
    centres = []
    for k, sprite in enumerate(sprites):
        hw, hh = sprite.width / 2 + margin, sprite.height / 2 + margin
        if 2 * hw > x1 - x0 or 2 * hh > y1 - y0:
            return None
        if row:  # evenly spread over the width, at about the same height
            slot = (x1 - x0) / n
            cx = x0 + slot * (k + rng.uniform(0.3, 0.7))
            cy = baseline + rng.normal(0, 0.05 * (y1 - y0))
        else:
            cx, cy = rng.uniform(x0 + hw, x1 - hw), rng.uniform(y0 + hh, y1 - hh)
        cx, cy = float(np.clip(cx, x0 + hw, x1 - hw)), float(np.clip(cy, y0 + hh, y1 - hh))
        box = (cx - hw, cy - hh, cx + hw, cy + hh)
        if any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
            return None
        placed.append(box)
        centres.append((cx, cy))
    return centres


def _layout(labels: Sequence[str], view: tuple[float, float, float, float], short: float,
            rng: np.random.Generator) -> tuple[list[Image.Image], list[tuple[float, float]], list[bool]]:
    """Instrument sprites (sizes drawn from ``SIZE_RANGE`` of ``short`` canvas pixels, shrunk
    when several do not fit) and their centres."""
    margin = SWAY * short + 2
    for attempt in range(400):
        shrink = 0.9 ** (attempt // 20)
        mirror = [bool(rng.random() < 0.5) for _ in labels]
        sides = rng.uniform(*SIZE_RANGE, len(labels)) * short * shrink
        sprites = [_scaled(instrument_sprite(get_instrument(lab)), max(8.0, s), m)
                   for lab, s, m in zip(labels, sides, mirror)]
        grow = max(rotation_margin(s.size, MAX_ANGLE) for s in sprites)
        centres = _try_layout(sprites, view, margin + grow, rng)
        if centres is not None:
            return sprites, centres, mirror
    raise ValueError(f"cannot fit {len(labels)} instruments into the frame; use a larger frame or fewer players")


def _player_layers(label: str, sprite: Image.Image, centre: tuple[float, float], mirror: bool, short: float,
                   grade: Grade, n_frames: int, fps: float, rng: np.random.Generator) -> tuple[Layer, Layer, Layer]:
    """Body, instrument and hands of one player, moving together."""
    figure = draw_person(max(sprite.size) / rng.uniform(2.2, 3.4), rng, sprite.size, label, mirror)
    offset = sway(n_frames, fps, SWAY * short, rng)
    cx, cy = centre
    ax, ay = figure.anchor
    body = Layer(grade.image(figure.body), np.array([cx - ax, cy - ay]) + offset)
    inst = Layer(grade.image(sprite), np.array([cx - sprite.width / 2, cy - sprite.height / 2]) + offset,
                 rocking(n_frames, fps, MAX_ANGLE, rng))
    hands = Layer(grade.image(figure.hands), body.xy)
    return body, inst, hands


def build_scene(labels: Sequence[str], size: tuple[int, int], n_frames: int, fps: float,
                rng: np.random.Generator, pool: str = "train") -> Scene:
    """A scene of ``len(labels)`` players (one per label) in a frame of ``size``, with a
    background of ``pool``, 0-4 silent objects, maybe a bystander, a colour grade, camera
    motion and sensor effects. Deterministic given ``rng``'s state."""
    canvas_wh = canvas_size(size)
    camera = camera_path(canvas_wh, size, n_frames, fps, rng)
    view = always_visible(camera)
    short = min(size) * float(np.mean(camera[:, 2] - camera[:, 0])) / size[0]  # in canvas pixels
    grade, sensor = random_grade(rng), random_sensor(size, n_frames, fps, rng)
    canvas = make_background(canvas_wh, rng, pool)
    if rng.random() < 0.3:  # shallow depth of field: the background out of focus
        canvas = canvas.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 2.5)))
    sprites, centres, mirror = _layout(labels, view, short, rng)
    order = np.argsort([c[1] + s.height / 2 for s, c in zip(sprites, centres)], kind="stable")  # far to near
    players = {int(k): _player_layers(labels[k], sprites[k], centres[k], mirror[k], short, grade, n_frames, fps, rng)
               for k in order}
    boxes = [players[k][1].union_bbox() for k in range(len(labels))]
    canvas, front = place_clutter(canvas.convert("RGBA"), view, short, boxes, rng)
    # All bodies first, then the instruments, then the hands: another player never hides a
    # sounding instrument (only hands and objects in front cover parts of it).
    layers = [(-1, players[int(k)][0]) for k in order]
    layers += [(int(k), players[int(k)][1]) for k in order] + [(-1, players[int(k)][2]) for k in order]
    layers += [(-1, Layer(grade.image(img), np.repeat([xy], n_frames, axis=0))) for img, xy in front]
    sources = [(labels[k], players[k][1]) for k in range(len(labels))]
    return Scene(tuple(size), grade.image(canvas.convert("RGB")), layers, sources, camera, sensor)
