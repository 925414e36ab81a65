"""Pictures of things: instrument and prop emoji from Noto Color Emoji, drawn shapes without it.

Every sprite is an RGBA ``PIL.Image`` cropped to its drawn pixels. Sprites are cached per
process, so a worker draws each one once.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from avsep.synth.instruments import Instrument
from avsep.synth.logs import warn_once


EMOJI_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",
)
EMOJI_BITMAP_SIZE = 109  # the CBDT bitmap font has strikes at this size only


@lru_cache(maxsize=1)
def emoji_font() -> ImageFont.FreeTypeFont | None:
    """The colour emoji font (``$AVSEP_EMOJI_FONT`` first), or ``None`` when not installed."""
    env = os.environ.get("AVSEP_EMOJI_FONT")
    for path in ([env] if env else []) + list(EMOJI_FONT_CANDIDATES):
        if path and os.path.isfile(path):
            try:
                return ImageFont.truetype(path, EMOJI_BITMAP_SIZE)
            except OSError:
                continue
    return None


@lru_cache(maxsize=None)
def emoji_sprite(char: str) -> Image.Image | None:
    """The emoji as an RGBA image cropped to its drawn pixels, or ``None`` if the font lacks it
    (a missing glyph draws nothing in a colour-bitmap font, so an empty bitmap means missing)."""
    font = emoji_font()
    if font is None:
        return None
    canvas = Image.new("RGBA", (EMOJI_BITMAP_SIZE * 3 // 2,) * 2, (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((0, 0), char, font=font, embedded_color=True)
    bbox = canvas.getchannel("A").getbbox()
    return canvas.crop(bbox) if bbox else None


def shape_sprite(inst: Instrument, size: int = 128) -> Image.Image:
    """Fallback picture: the label's shape in its colour with a dark outline; RGBA ``size``^2."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    s, c, o = size, inst.color + (255,), (30, 30, 30, 255)
    m = s // 10
    poly = {
        "triangle": [(s / 2, m), (s - m, s - m), (m, s - m)],
        "star": [(s / 2 + (s / 2 - m) * (1 if i % 2 == 0 else 0.45) * math.sin(i * math.pi / 5),
                  s / 2 - (s / 2 - m) * (1 if i % 2 == 0 else 0.45) * math.cos(i * math.pi / 5)) for i in range(10)],
        "hexagon": [(s / 2 + (s / 2 - m) * math.cos(i * math.pi / 3), s / 2 + (s / 2 - m) * math.sin(i * math.pi / 3))
                    for i in range(6)],
        "bell": [(s / 2, m), (s * 0.7, s * 0.3), (s - m, s - m), (m, s - m), (s * 0.3, s * 0.3)],
        "hook": [(m, m), (s * 0.45, m), (s * 0.45, s * 0.6), (s - m, s * 0.6), (s - m, s - m), (m, s - m)],
    }
    if inst.shape in poly:
        d.polygon(poly[inst.shape], fill=c, outline=o, width=4)
    elif inst.shape == "ring":
        d.ellipse([m, m, s - m, s - m], fill=c, outline=o, width=4)
        d.ellipse([s * 0.3, s * 0.3, s * 0.7, s * 0.7], fill=(245, 240, 225, 255), outline=o, width=4)
    elif inst.shape == "bar":
        d.rounded_rectangle([s * 0.4, m, s * 0.6, s - m], radius=s // 12, fill=c, outline=o, width=4)
    elif inst.shape == "keys":
        d.rectangle([m, s * 0.25, s - m, s * 0.75], fill=(250, 250, 250, 255), outline=o, width=4)
        for i in range(1, 6):
            d.rectangle([m + i * (s - 2 * m) / 6 - 4, s * 0.25, m + i * (s - 2 * m) / 6 + 4, s * 0.55], fill=o)
    elif inst.shape == "bellows":
        d.rectangle([m, s * 0.2, s - m, s * 0.8], fill=c, outline=o, width=4)
        for i in range(1, 6):
            d.line([m + i * (s - 2 * m) / 6, s * 0.2, m + i * (s - 2 * m) / 6, s * 0.8], fill=o, width=3)
    elif inst.shape == "drum":
        d.rectangle([m, s * 0.35, s - m, s * 0.8], fill=c, outline=o, width=4)
        d.ellipse([m, s * 0.2, s - m, s * 0.5], fill=(240, 240, 240, 255), outline=o, width=4)
    else:  # "ellipse" and anything unknown
        d.ellipse([s * 0.2, m, s * 0.8, s - m], fill=c, outline=o, width=4)
    return img


@lru_cache(maxsize=None)
def instrument_sprite(inst: Instrument) -> Image.Image:
    """The label's picture: its emoji when the font renders it, else ``shape_sprite``; RGBA."""
    sprite = emoji_sprite(inst.emoji)
    if sprite is None:
        warn_once(inst.label, f"emoji for {inst.label!r} not available: drawing a shape instead")
        sprite = shape_sprite(inst)
    return sprite


@dataclass(frozen=True)
class Prop:
    """A silent object of a room. ``place``: ``"wall"`` (hangs in the upper part of the scene)
    or ``"floor"`` (stands on the ground, may be in front of the players); ``size``: the range
    of its longer side as a fraction of the frame's shorter side; ``shape``/``color`` draw the
    fallback picture."""

    name: str
    emoji: str
    place: str
    size: tuple[float, float]
    shape: str
    color: tuple[int, int, int]


# Things found in the rooms of real performance videos. Nothing that makes sound (no TV,
# radio, speaker, bell or phone), so a model cannot learn that they are sources.
PROPS: tuple[Prop, ...] = (
    Prop("chair", "\U0001FA91", "floor", (0.25, 0.5), "chair", (150, 100, 60)),
    Prop("potted_plant", "\U0001FAB4", "floor", (0.2, 0.45), "plant", (60, 140, 60)),
    Prop("couch_and_lamp", "\U0001F6CB", "floor", (0.35, 0.7), "couch", (60, 120, 200)),
    Prop("bed", "\U0001F6CF", "floor", (0.4, 0.7), "couch", (120, 90, 160)),
    Prop("door", "\U0001F6AA", "wall", (0.5, 0.8), "frame", (140, 90, 50)),
    Prop("window", "\U0001FA9F", "wall", (0.3, 0.55), "frame", (200, 160, 110)),
    Prop("framed_picture", "\U0001F5BC", "wall", (0.15, 0.4), "frame", (210, 170, 40)),
    Prop("mirror", "\U0001FA9E", "wall", (0.2, 0.4), "round", (190, 140, 100)),
    Prop("wall_clock", "\U0001F55B", "wall", (0.1, 0.25), "round", (200, 210, 220)),
    Prop("mantel_clock", "\U0001F570", "floor", (0.12, 0.25), "box", (120, 70, 40)),
    Prop("books", "\U0001F4DA", "floor", (0.12, 0.3), "box", (180, 50, 50)),
    Prop("teddy_bear", "\U0001F9F8", "floor", (0.12, 0.3), "round", (150, 100, 60)),
    Prop("cat", "\U0001F408", "floor", (0.12, 0.3), "round", (240, 170, 40)),
    Prop("dog", "\U0001F415", "floor", (0.15, 0.3), "round", (230, 200, 170)),
    Prop("oil_lamp", "\U0001FA94", "floor", (0.1, 0.2), "round", (200, 110, 40)),
    Prop("candle", "\U0001F56F", "floor", (0.08, 0.18), "box", (230, 230, 220)),
    Prop("cactus", "\U0001F335", "floor", (0.12, 0.3), "plant", (70, 150, 70)),
    Prop("bouquet", "\U0001F490", "floor", (0.12, 0.25), "plant", (220, 90, 140)),
    Prop("laptop", "\U0001F4BB", "floor", (0.12, 0.25), "box", (150, 160, 170)),
    Prop("backpack", "\U0001F392", "floor", (0.12, 0.3), "box", (220, 60, 50)),
    Prop("basket", "\U0001F9FA", "floor", (0.12, 0.25), "box", (200, 160, 90)),
    Prop("file_cabinet", "\U0001F5C4", "floor", (0.25, 0.5), "box", (70, 80, 90)),
    Prop("vase", "\U0001F3FA", "floor", (0.12, 0.3), "round", (210, 110, 60)),
)


def prop_shape_sprite(prop: Prop, size: int = 128) -> Image.Image:
    """Fallback picture of a prop: a rough furniture-like shape in its colour; RGBA ``size``^2."""
    img = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    s, c, o = size, prop.color + (255,), (40, 35, 30, 255)
    if prop.shape == "chair":
        d.rectangle([s * 0.25, s * 0.05, s * 0.35, s * 0.95], fill=c, outline=o, width=3)
        d.rectangle([s * 0.25, s * 0.5, s * 0.8, s * 0.6], fill=c, outline=o, width=3)
        d.rectangle([s * 0.7, s * 0.5, s * 0.8, s * 0.95], fill=c, outline=o, width=3)
    elif prop.shape == "plant":
        d.polygon([(s * 0.3, s * 0.6), (s * 0.7, s * 0.6), (s * 0.62, s * 0.95), (s * 0.38, s * 0.95)],
                  fill=(180, 90, 50, 255), outline=o)
        d.ellipse([s * 0.1, s * 0.05, s * 0.9, s * 0.65], fill=c, outline=o, width=3)
    elif prop.shape == "couch":
        d.rounded_rectangle([s * 0.05, s * 0.35, s * 0.95, s * 0.8], radius=s // 10, fill=c, outline=o, width=3)
        d.rectangle([s * 0.15, s * 0.55, s * 0.85, s * 0.7], fill=tuple(v // 2 + 60 for v in prop.color) + (255,))
    elif prop.shape == "frame":
        d.rectangle([s * 0.15, s * 0.05, s * 0.85, s * 0.95], fill=c, outline=o, width=3)
        d.rectangle([s * 0.25, s * 0.15, s * 0.75, s * 0.85], fill=(150, 190, 220, 255), outline=o, width=2)
    elif prop.shape == "round":
        d.ellipse([s * 0.1, s * 0.1, s * 0.9, s * 0.9], fill=c, outline=o, width=3)
    else:  # "box"
        d.rectangle([s * 0.15, s * 0.3, s * 0.85, s * 0.9], fill=c, outline=o, width=3)
    return img.crop(img.getchannel("A").getbbox())


@lru_cache(maxsize=None)
def prop_sprite(prop: Prop) -> Image.Image:
    """The prop's picture: its emoji when the font renders it, else ``prop_shape_sprite``; RGBA."""
    sprite = emoji_sprite(prop.emoji)
    if sprite is None:
        warn_once("props", "prop emoji not available: drawing shapes for the room's objects")
        sprite = prop_shape_sprite(prop)
    return sprite
