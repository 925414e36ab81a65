"""Drawn people: a player holding an instrument, or a bystander without one.

A person is drawn at twice the size and downsampled, which smooths the edges. Proportions are
in head heights (``u``). Skin tone, build, hair and clothes vary per person. A player's arms
reach from the shoulders to two points on the instrument; the forearms and hands come as a
separate layer, drawn in front of the instrument as a real player's would be.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

RGB = tuple[int, int, int]
SKIN_TONES: tuple[RGB, ...] = ((255, 224, 196), (241, 194, 150), (224, 172, 105), (198, 134, 66),
                               (141, 85, 36), (92, 56, 30))
HAIR_COLORS: tuple[RGB, ...] = ((30, 25, 20), (80, 50, 30), (150, 100, 50), (220, 190, 120), (170, 170, 170),
                               (120, 40, 20))
SS = 2  # supersampling factor
# Where a player holds each instrument: its centre relative to the base of the neck, in head
# heights (x towards the player's side, y down). Unlisted labels are held at the belly.
HOLD = {"violin": (0.9, 0.3), "flute": (1.1, -0.35), "trumpet": (0.5, -0.2), "saxophone": (0.3, 1.8),
        "acoustic_guitar": (0.2, 2.1), "banjo": (0.2, 2.1), "accordion": (0.0, 1.7), "piano": (0.0, 3.0),
        "xylophone": (0.0, 3.0), "drum": (0.0, 3.0), "congas": (0.0, 3.0)}
DEFAULT_HOLD = (0.0, 1.8)


@dataclass
class Figure:
    """A drawn person: ``body`` goes behind the instrument, ``hands`` in front (both RGBA of
    the same size); ``anchor`` is the pixel of both where the instrument's centre goes (for a
    bystander: the middle of the chest)."""

    body: Image.Image
    hands: Image.Image
    anchor: tuple[float, float]


@dataclass
class Look:
    """How one person looks: colours of skin, clothes (``jacket`` ``None``: none) and hair."""

    skin: RGB
    shirt: RGB
    jacket: RGB | None
    pants: RGB
    hair: RGB
    hair_style: str
    build: float  # shoulder width in head heights
    short_sleeves: bool


def random_look(rng: np.random.Generator) -> Look:
    """Random skin, clothes and hair for one person."""
    def color(lo: float, hi: float) -> RGB:
        return tuple(int(v) for v in rng.uniform(lo, hi, 3))

    return Look(skin=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))], shirt=color(20, 235),
                jacket=color(15, 120) if rng.random() < 0.35 else None, pants=color(15, 110),
                hair=HAIR_COLORS[int(rng.integers(len(HAIR_COLORS)))],
                hair_style=str(rng.choice(["short", "long", "bald", "hat"])), build=float(rng.uniform(1.6, 2.2)),
                short_sleeves=bool(rng.random() < 0.4))


def _elbow(shoulder: np.ndarray, hand: np.ndarray, length: float, outward: float) -> np.ndarray:
    """Elbow of an arm of ``length`` (upper arm + forearm) from shoulder to hand, bent
    outwards (``outward`` = -1 or 1) and down; a straight arm when the hand is out of reach."""
    mid, d = (shoulder + hand) / 2, hand - shoulder
    dist = float(np.hypot(*d))
    bend = np.sqrt(max(0.0, (length / 2) ** 2 - (dist / 2) ** 2))
    normal = np.array([-d[1], d[0]]) / max(dist, 1e-6)
    if normal[0] * outward < 0 or (abs(normal[0]) < 0.2 and normal[1] < 0):
        normal = -normal
    return mid + normal * bend


def _draw_body(d: ImageDraw.ImageDraw, neck: np.ndarray, u: float, look: Look) -> None:
    """Legs, torso, neck, head and hair around the base of the neck ``neck``."""
    x, y = neck
    half = look.build * u / 2
    hips = y + 2.9 * u
    for side in (-1, 1):  # legs and shoes
        lx = x + side * 0.4 * u
        d.rectangle([lx - 0.3 * u, hips - 0.2 * u, lx + 0.3 * u, hips + 3.4 * u], fill=look.pants)
        d.ellipse([lx - 0.35 * u, hips + 3.25 * u, lx + 0.45 * u, hips + 3.6 * u], fill=(30, 25, 25))
    torso = [(x - half, y + 0.1 * u), (x + half, y + 0.1 * u), (x + 0.8 * u, hips), (x - 0.8 * u, hips)]
    d.polygon(torso, fill=look.shirt)
    d.ellipse([x - half - 0.2 * u, y, x - half + 0.4 * u, y + 0.6 * u], fill=look.shirt)  # shoulders
    d.ellipse([x + half - 0.4 * u, y, x + half + 0.2 * u, y + 0.6 * u], fill=look.shirt)
    if look.jacket:
        for side in (-1, 1):
            d.polygon([(x + side * half, y + 0.1 * u), (x + side * 0.2 * u, y + 0.1 * u),
                       (x + side * 0.35 * u, hips), (x + side * 0.8 * u, hips)], fill=look.jacket)
    d.rectangle([x - 0.15 * u, y - 0.3 * u, x + 0.15 * u, y + 0.15 * u], fill=look.skin)  # neck
    top, hw = y - 1.15 * u, 0.4 * u
    if look.hair_style == "long":
        d.rounded_rectangle([x - hw - 0.1 * u, top, x + hw + 0.1 * u, y + 0.4 * u], radius=0.3 * u, fill=look.hair)
    d.ellipse([x - hw, top, x + hw, top + u], fill=look.skin)
    if look.hair_style in ("short", "long"):
        d.chord([x - hw - 0.05 * u, top - 0.08 * u, x + hw + 0.05 * u, top + 0.75 * u], 180, 360, fill=look.hair)
    elif look.hair_style == "hat":
        d.rectangle([x - hw, top - 0.2 * u, x + hw, top + 0.25 * u], fill=look.jacket or look.pants)
        d.rectangle([x - hw - 0.2 * u, top + 0.2 * u, x + hw + 0.2 * u, top + 0.3 * u], fill=look.jacket or look.pants)
    if u >= 8 * SS:  # eyes, when big enough to see
        for side in (-1, 1):
            ex, ey = x + side * 0.15 * u, top + 0.5 * u
            d.ellipse([ex - 0.04 * u, ey - 0.04 * u, ex + 0.04 * u, ey + 0.04 * u], fill=(25, 20, 20))


def _draw_arm(back: ImageDraw.ImageDraw, front: ImageDraw.ImageDraw | None, shoulder: np.ndarray,
              hand: np.ndarray, u: float, look: Look, outward: float) -> None:
    """Upper arm on ``back``; forearm and hand on ``front`` (or on ``back`` too when ``None``)."""
    elbow = _elbow(shoulder, hand, 2.5 * u, outward)
    width = max(1, int(0.36 * u))
    sleeve = look.jacket or look.shirt
    back.line([tuple(shoulder), tuple(elbow)], fill=sleeve, width=width, joint="curve")
    back.ellipse([elbow[0] - width / 2, elbow[1] - width / 2, elbow[0] + width / 2, elbow[1] + width / 2], fill=sleeve)
    draw = front or back
    draw.line([tuple(elbow), tuple(hand)], fill=look.skin if look.short_sleeves else sleeve, width=width)
    r = 0.2 * u
    draw.ellipse([hand[0] - r, hand[1] - r, hand[0] + r, hand[1] + r], fill=look.skin)


def _finish(body: Image.Image, hands: Image.Image, anchor: np.ndarray) -> Figure:
    """Crop both layers to their drawn pixels and downsample them; moves the anchor along."""
    boxes = [b for b in (body.getchannel("A").getbbox(), hands.getchannel("A").getbbox()) if b]
    x0, y0 = min(b[0] for b in boxes) // SS * SS, min(b[1] for b in boxes) // SS * SS
    x1, y1 = max(b[2] for b in boxes), max(b[3] for b in boxes)
    size = (max(1, (x1 - x0) // SS), max(1, (y1 - y0) // SS))
    box = (x0, y0, x0 + size[0] * SS, y0 + size[1] * SS)
    small = [img.resize(size, Image.LANCZOS, box=box) for img in (body, hands)]
    return Figure(small[0], small[1], ((anchor[0] - x0) / SS, (anchor[1] - y0) / SS))


def draw_person(u: float, rng: np.random.Generator, instrument: tuple[int, int] | None = None,
                label: str = "", mirror: bool = False) -> Figure:
    """A person with head height ``u`` pixels. With ``instrument`` = ``(w, h)`` of the
    instrument's picture the person holds it the way ``label`` is held (``mirror``: on the
    other side), else a bystander with arms hanging down."""
    look = random_look(rng)
    uu = u * SS
    w, h = int(10 * uu), int(12 * uu)
    neck = np.array([w / 2, 2.5 * uu])
    body, hands = Image.new("RGBA", (w, h)), Image.new("RGBA", (w, h))
    back, front = ImageDraw.Draw(body), ImageDraw.Draw(hands)
    _draw_body(back, neck, uu, look)
    shoulders = [neck + [side * look.build * uu / 2, 0.3 * uu] for side in (-1, 1)]
    if instrument is None:
        for side, sh in zip((-1, 1), shoulders):
            _draw_arm(back, None, sh, sh + [side * 0.3 * uu, 2.4 * uu], uu, look, side)
        return _finish(body, hands, neck + [0, 1.5 * uu])
    hx, hy = HOLD.get(label, DEFAULT_HOLD)
    center = neck + [(-hx if mirror else hx) * uu, hy * uu]
    iw, ih = instrument[0] * SS, instrument[1] * SS
    for side, sh in zip((-1, 1), shoulders):
        reach = rng.uniform(0.1, 0.4)  # the hands grip the instrument at different places
        hand = center + [side * reach * iw, rng.uniform(-0.15, 0.15) * ih]
        _draw_arm(back, front, sh, hand, uu, look, side)
    return _finish(body, hands, center)
