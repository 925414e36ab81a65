"""Clutter: silent objects and bystanders that a model must learn to ignore.

Real performance videos show furniture, plants, pets and other people; none of them makes a
sound. Each scene gets 0-4 objects (``sprites.PROPS``): wall objects hang in the upper part,
floor objects stand lower and some stand in front of the players, partly hiding an instrument
(never more than ``MAX_HIDDEN`` of one). Sometimes a person without an instrument stands in the
room. Images are ``PIL.Image``; positions are canvas pixels.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

from avsep.synth.layers import overlap
from avsep.synth.people import draw_person
from avsep.synth.sprites import PROPS, Prop, prop_sprite

MAX_PROPS = 4
FRONT_PROB = 0.4  # a floor object stands in front of the players
MAX_HIDDEN = 0.3  # the most of an instrument's box a front object may cover
BYSTANDER_PROB = 0.3

View = tuple[float, float, float, float]


def _sprite(prop: Prop, short: float, rng: np.random.Generator) -> Image.Image:
    img = prop_sprite(prop)
    side = rng.uniform(*prop.size) * short
    scale = side / max(img.size)
    img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.LANCZOS)
    return img.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else img


def _position(prop: Prop, img: Image.Image, view: View, rng: np.random.Generator) -> tuple[int, int]:
    """Top-left of a prop: wall objects in the upper half of the view, floor objects standing
    on a floor line in the lower part (partly out of view is fine)."""
    x0, y0, x1, y1 = view
    x = rng.uniform(x0 - img.width / 3, x1 - 2 * img.width / 3)
    if prop.place == "wall":
        y = rng.uniform(y0 - img.height / 4, y0 + 0.5 * (y1 - y0) - img.height / 2)
    else:
        y = rng.uniform(y0 + 0.6 * (y1 - y0), y1 + 0.15 * img.height) - img.height
    return int(round(x)), int(round(y))


def _hides_too_much(img: Image.Image, xy: tuple[int, int], instruments: Sequence[tuple[int, int, int, int]]) -> bool:
    box = (xy[0], xy[1], xy[0] + img.width, xy[1] + img.height)
    return any(overlap(box, b) > MAX_HIDDEN * (b[2] - b[0]) * (b[3] - b[1]) for b in instruments)


def _bystander(canvas: Image.Image, view: View, short: float, rng: np.random.Generator) -> None:
    """Paste a person without an instrument somewhere into ``canvas``, in place."""
    figure = draw_person(short * rng.uniform(0.06, 0.14), rng)
    x0, y0, x1, y1 = view
    x, y = rng.uniform(x0, x1), rng.uniform(y0 + 0.2 * (y1 - y0), y1)
    pos = (int(x - figure.anchor[0]), int(y - figure.anchor[1]))
    _paste(canvas, figure.body, pos)
    _paste(canvas, figure.hands, pos)


def _paste(canvas: Image.Image, img: Image.Image, xy: tuple[int, int]) -> None:
    canvas.paste(img, xy, img)  # clips at the canvas edges, unlike alpha_composite


def place_clutter(canvas: Image.Image, view: View, short: float, instruments: Sequence[tuple[int, int, int, int]],
                  rng: np.random.Generator) -> tuple[Image.Image, list[tuple[Image.Image, tuple[int, int]]]]:
    """Put 0-``MAX_PROPS`` props and maybe a bystander into the scene.

    ``canvas`` is the RGBA background, ``view`` the part always in the frame, ``short`` the
    frame's shorter side in canvas pixels, ``instruments`` the instruments' boxes over all
    frames. Returns the canvas with the objects behind the players pasted in, and the objects
    in front of the players as ``(image, top-left)`` pairs to paste over every frame."""
    chosen = rng.choice(len(PROPS), int(rng.integers(0, MAX_PROPS + 1)), replace=False)
    props = [PROPS[int(i)] for i in chosen]
    props.sort(key=lambda p: p.place != "wall")  # things on the wall first, so floor objects stand before them
    front: list[tuple[Image.Image, tuple[int, int]]] = []
    for prop in props:
        img = _sprite(prop, short, rng)
        xy = _position(prop, img, view, rng)
        if prop.place == "floor" and rng.random() < FRONT_PROB:
            for _ in range(10):
                if not _hides_too_much(img, xy, instruments):
                    front.append((img, xy))
                    break
                xy = _position(prop, img, view, rng)
            else:
                _paste(canvas, img, xy)
        else:
            _paste(canvas, img, xy)
    if rng.random() < BYSTANDER_PROB:
        _bystander(canvas, view, short, rng)
    return canvas, front
