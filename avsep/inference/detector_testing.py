"""A tiny YOLO trained in a few minutes on a CPU, for testing the detector without downloads.

Pretrained weights cannot be fetched offline, so the tests make their own: a YOLOv8-nano built
from its yaml (no pretrained weights) trained on frames of the project's own scene generator
(``avsep.synth.scenes``: 1-3 players holding instruments in front of the training pool's
photographs, with silent objects and bystanders, at the sizes of the solo and duet videos), so
that it finds the instruments in generated videos, plus a minority of instrument sprites pasted
on cluttered gradients (``random_scene``), which the detector tests use as simple, exact cases.
Labels are the instruments' true boxes. Its classes are the Open Images V7 names of the labels
(``Violin``, ``Trumpet``, ``Drum``), so code written for the default OIV7 model runs unchanged.

``cached_tiny_yolo()`` trains once and keeps the weights under a key that changes with the recipe,
the sprites, the background photographs and the ultralytics version. Needs the ``detect`` extra.
"""
from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from PIL import Image, ImageDraw

from avsep.inference.detector import MUSIC_TO_OIV7, cache_dir, import_ultralytics
from avsep.synth.backgrounds import background_files
from avsep.synth.instruments import get_instrument
from avsep.synth.scenes import build_scene
from avsep.synth.videos import DEFAULT_FPS
from avsep.utils import atomic_path, log

# Bump when the generated data or the training changes in a way the key below cannot see.
RECIPE_VERSION = "2"
# Backgrounds of the tiny model's scenes: the training pool, so held-out videos stay unseen.
POOL = "train"
CLIP_FRAMES = 8 * DEFAULT_FPS  # a training frame is one frame of an 8 s clip, as the test videos are


@dataclass(frozen=True)
class TinyYoloRecipe:
    """What to generate and how to train. ``imgsz`` is the network's input side in pixels."""

    labels: tuple[str, ...] = ("violin", "trumpet", "drum")
    # About 4 minutes on two cores, where ultralytics trains on one thread (cores - 1): 25 s to
    # render the frames, 10 s an epoch. With 12-16 epochs it missed small violins and trumpets in
    # duets; 24 epochs found a little more than 20, for a fifth more time.
    n_train: int = 240
    n_val: int = 8
    imgsz: int = 224
    epochs: int = 20
    sprite_share: float = 0.15  # of the training images: sprites on gradients; the rest generated scenes
    batch: int = 8
    lr0: float = 0.004
    seed: int = 0
    model: str = "yolov8n.yaml"


@dataclass(frozen=True)
class TrueObject:
    """An instrument drawn into a frame: its MUSIC label and tight box ``(x0, y0, x1, y1)``, x1/y1 exclusive."""

    label: str
    box: tuple[int, int, int, int]


def instrument_picture(label: str) -> Image.Image:
    """The synthetic videos' RGBA picture of ``label`` (its emoji, or a drawn shape without the
    font). ``instrument_sprite`` moved from ``avsep.synth.videos`` to ``avsep.synth.sprites``;
    either place will do."""
    for module in ("avsep.synth.sprites", "avsep.synth.videos"):
        try:
            draw = getattr(importlib.import_module(module), "instrument_sprite")
        except (ImportError, AttributeError):
            continue
        return draw(get_instrument(label))
    raise ImportError("avsep.synth has no instrument_sprite")


def class_names(labels: Sequence[str]) -> list[str]:
    """The class name the tiny model gives each label: its OIV7 class, else the label itself."""
    return [MUSIC_TO_OIV7.get(label) or label for label in labels]


# -- pictures ------------------------------------------------------------------------------------

def cluttered_background(size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A ``(width, height)`` RGB picture: a colour gradient with grain and a few random shapes,
    so that the detector has to learn the instruments rather than "anything not flat"."""
    w, h = size
    c0, c1 = rng.uniform(30, 230, 3), rng.uniform(30, 230, 3)
    ramp = np.linspace(0, 1, w)[None, :, None] * rng.uniform(0, 1) + np.linspace(0, 1, h)[:, None, None] * rng.uniform(0, 1)
    img = c0 + (c1 - c0) * ramp / max(float(ramp.max()), 1e-6)
    img = img + rng.normal(0, rng.uniform(2, 10), (h, w, 1))
    bg = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(bg)
    for _ in range(rng.integers(2, 7)):
        x0, y0 = rng.uniform(-0.1, 1.0) * w, rng.uniform(-0.1, 1.0) * h
        x1, y1 = x0 + rng.uniform(0.05, 0.4) * w, y0 + rng.uniform(0.05, 0.4) * h
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        [draw.rectangle, draw.ellipse, draw.line][rng.integers(3)]([x0, y0, x1, y1], fill=colour)
    return bg


def sprite(label: str, side: int, rng: Optional[np.random.Generator] = None) -> Image.Image:
    """The label's RGBA picture with its longer side ``side`` pixels, cropped to its drawn
    pixels; with ``rng``, randomly mirrored and turned by up to 12 degrees."""
    base = instrument_picture(label)
    scale = side / max(base.size)
    img = base.resize((max(1, round(base.width * scale)), max(1, round(base.height * scale))), Image.LANCZOS)
    if rng is not None:
        if rng.random() < 0.5:
            img = img.transpose(Image.FLIP_LEFT_RIGHT)
        img = img.rotate(float(rng.uniform(-12, 12)), resample=Image.BILINEAR, expand=True)
    return img.crop(img.getchannel("A").getbbox())


def paste(canvas: Image.Image, picture: Image.Image, xy: tuple[int, int]) -> tuple[int, int, int, int]:
    """Draw the RGBA ``picture`` with its top-left at ``xy``; its box clipped to the canvas."""
    canvas.paste(picture, xy, picture)
    x, y = xy
    return max(0, x), max(0, y), min(canvas.width, x + picture.width), min(canvas.height, y + picture.height)


def random_scene(labels: Sequence[str], size: tuple[int, int], rng: np.random.Generator,
                 side_range: tuple[float, float] = (0.25, 0.5)) -> tuple[np.ndarray, list[TrueObject]]:
    """One RGB uint8 ``(H, W, 3)`` frame of ``size = (width, height)`` with one sprite per label,
    not overlapping, each with a longer side of ``side_range`` times the frame's shorter side."""
    canvas = cluttered_background(size, rng)
    objects: list[TrueObject] = []
    for label in labels:
        pic = sprite(label, int(rng.uniform(*side_range) * min(size)), rng)
        for _ in range(50):  # rejection sampling of a free spot; a label with none is left out
            x = int(rng.integers(0, max(1, size[0] - pic.width)))
            y = int(rng.integers(0, max(1, size[1] - pic.height)))
            box = (x, y, x + pic.width, y + pic.height)
            if all(_apart(box, o.box, margin=4) for o in objects):
                objects.append(TrueObject(label, paste(canvas, pic, (x, y))))
                break
    # Global brightness, as cameras differ.
    frame = np.asarray(canvas, np.float32) * rng.uniform(0.75, 1.2)
    return np.clip(frame, 0, 255).astype(np.uint8), objects


def _apart(a: Sequence[int], b: Sequence[int], margin: int) -> bool:
    return a[2] + margin <= b[0] or b[2] + margin <= a[0] or a[3] + margin <= b[1] or b[3] + margin <= a[1]


def random_size(rng: np.random.Generator) -> tuple[int, int]:
    """A ``(width, height)`` between 160 and 360 pixels a side, landscape or portrait."""
    return int(rng.integers(160, 361)), int(rng.integers(160, 361))


def detection_frames(labels: Sequence[str], n: int, seed: int) -> list[tuple[np.ndarray, list[TrueObject]]]:
    """``n`` scenes of random size, each with 1 to all of ``labels`` in random order."""
    rng = np.random.default_rng(seed)
    scenes = []
    for _ in range(n):
        chosen = [str(label) for label in rng.permutation(labels)[: rng.integers(1, len(labels) + 1)]]
        scenes.append(random_scene(chosen, random_size(rng), rng))
    return scenes


def moving_sequence(labels: tuple[str, str], size: tuple[int, int] = (320, 240), frames: int = 24,
                    speed: float = 5.0, seed: int = 0) -> tuple[list[np.ndarray], list[list[TrueObject]]]:
    """A video of two sprites gliding across one background in opposite directions, the first
    along the top half left to right, the second along the bottom half right to left, ``speed``
    pixels a frame: (RGB uint8 ``(H, W, 3)`` frames, true objects per frame)."""
    rng = np.random.default_rng(seed)
    w, h = size
    background = cluttered_background(size, rng)
    pics = [sprite(label, int(0.34 * h)) for label in labels]
    starts = [(0.05 * w, 0.08 * h), (0.95 * w - pics[1].width, 0.55 * h)]
    video, truth = [], []
    for i in range(frames):
        canvas = background.copy()
        objs = []
        for k, (label, pic) in enumerate(zip(labels, pics)):
            x = starts[k][0] + (speed * i if k == 0 else -speed * i)
            y = starts[k][1] + 3 * np.sin(i / 3 + k)  # a little bob, as a player moves
            objs.append(TrueObject(label, paste(canvas, pic, (int(round(x)), int(round(y))))))
        video.append(np.asarray(canvas))
        truth.append(objs)
    return video, truth


# -- generated scenes: what the videos of avsep.synth show ---------------------------------------

def scene_size(rng: np.random.Generator) -> tuple[int, int]:
    """A ``(width, height)`` like a generated video's: a solo's 256x256 or an ensemble's 512x256
    (half of the time each), scaled by 0.75-1.25 and its aspect by 0.9-1.1; even, as the generator needs."""
    w, h = (256, 256) if rng.random() < 0.5 else (512, 256)
    scale, aspect = rng.uniform(0.75, 1.25), rng.uniform(0.9, 1.1)
    return 2 * round(w * scale * aspect / 2), 2 * round(h * scale / 2)


def some_labels(labels: Sequence[str], rng: np.random.Generator) -> list[str]:
    """1 to 3 different ``labels`` (players of one scene) in random order."""
    return [str(label) for label in rng.permutation(labels)[: rng.integers(1, min(3, len(labels)) + 1)]]


def scene_frame(labels: Sequence[str], size: tuple[int, int], rng: np.random.Generator,
                pool: str = POOL) -> tuple[np.ndarray, list[TrueObject]]:
    """A frame, at a random time of an 8 s clip, of a scene built by the video generator
    (``build_scene``: one player per label in front of a background of ``pool``, with silent
    objects and maybe a bystander), and the box of each instrument in it."""
    scene = build_scene(labels, size, CLIP_FRAMES, DEFAULT_FPS, rng, pool)
    i = int(rng.integers(scene.n_frames))
    return scene.frame(i), [TrueObject(label, tuple(box)) for label, box in zip(labels, scene.boxes_at(i))]


def scene_images(labels: Sequence[str], n: int, seed: int) -> list[tuple[np.ndarray, list[TrueObject]]]:
    """``n`` training images of generated scenes: a solo-sized frame, or two ensemble-sized
    frames one above the other. ultralytics pads every training image to a square, so a pair of
    2:1 frames costs what one frame costs, and each keeps the scale its instruments have at the
    model's input when an ensemble video is run through it."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        w, h = size = scene_size(rng)
        top, objects = scene_frame(some_labels(labels, rng), size, rng)
        if w > 1.5 * h:
            bottom, more = scene_frame(some_labels(labels, rng), size, rng)
            top = np.concatenate([top, bottom])
            objects += [TrueObject(o.label, (o.box[0], o.box[1] + h, o.box[2], o.box[3] + h)) for o in more]
        images.append((top, objects))
    return images


def training_frames(recipe: TinyYoloRecipe, n: int, seed: int) -> list[tuple[np.ndarray, list[TrueObject]]]:
    """``n`` images for ``recipe``: ``scene_images``, and ``sprite_share`` of sprite frames."""
    sprites = round(n * recipe.sprite_share)
    return scene_images(recipe.labels, n - sprites, seed) + detection_frames(recipe.labels, sprites, seed + 1)


# -- dataset and training ------------------------------------------------------------------------

def write_dataset(root: Path, recipe: TinyYoloRecipe) -> Path:
    """Write train/val images and YOLO labels (``class cx cy w h``, fractions of the frame) under
    ``root``; returns the dataset yaml for ultralytics."""
    names = class_names(recipe.labels)
    for split, n, seed in (("train", recipe.n_train, recipe.seed), ("val", recipe.n_val, recipe.seed + 10_000)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for i, (frame, objects) in enumerate(training_frames(recipe, n, seed)):
            h, w = frame.shape[:2]
            # JPEG, whose blur and halved colour resolution are like those of the H.264 videos the
            # model is run on: trained on clean frames only, it found fewer instruments in a
            # decoded video than in the same frames rendered clean.
            Image.fromarray(frame).save(root / "images" / split / f"{i:05d}.jpg", quality=75)
            lines = [f"{recipe.labels.index(o.label)} {(o.box[0] + o.box[2]) / 2 / w:.6f} "
                     f"{(o.box[1] + o.box[3]) / 2 / h:.6f} {(o.box[2] - o.box[0]) / w:.6f} "
                     f"{(o.box[3] - o.box[1]) / h:.6f}" for o in objects]
            (root / "labels" / split / f"{i:05d}.txt").write_text("\n".join(lines) + "\n")
    data = {"path": str(root), "train": "images/train", "val": "images/val", "names": dict(enumerate(names))}
    yaml = root / "data.yaml"
    yaml.write_text(json.dumps(data))  # JSON is YAML
    return yaml


def train_tiny_yolo(workdir: Path, recipe: TinyYoloRecipe = TinyYoloRecipe()) -> Path:
    """Generate the data under ``workdir`` and train; returns the final weights (``.pt``)."""
    ultralytics = import_ultralytics()
    data = write_dataset(workdir / "data", recipe)
    model = ultralytics.YOLO(recipe.model, task="detect")
    model.train(
        data=str(data), epochs=recipe.epochs, imgsz=recipe.imgsz, batch=recipe.batch, device="cpu",
        workers=0, project=str(workdir / "runs"), name="tiny", exist_ok=True, seed=recipe.seed,
        deterministic=True, verbose=False, plots=False, amp=False,
        # Few epochs from scratch: no warm-up (it would take most of them), AdamW at a high
        # rate, an optimizer step every batch (nbs = batch), and plain frames without mosaics,
        # which would shrink the instruments to a quarter.
        optimizer="AdamW", lr0=recipe.lr0, warmup_epochs=0, nbs=recipe.batch, mosaic=0.0,
        close_mosaic=0, cos_lr=True, val=False, cache="ram",
        # Milder colour and size jitter than ultralytics' defaults: the generated scenes already
        # vary grade and sizes, and a short training learns faster from less distorted frames.
        hsv_s=0.4, hsv_v=0.25, scale=0.25,
    )
    return Path(model.trainer.last)


def recipe_key(recipe: TinyYoloRecipe) -> str:
    """12 hex digits naming the weights of ``recipe``: changes with the recipe, the sprites (the
    emoji font or drawn shapes), the background photographs (without any, the scenes are drawn
    rooms) and the ultralytics version."""
    ultralytics = import_ultralytics()
    photos = [p.name for p in background_files(POOL)]
    h = hashlib.sha256(json.dumps([RECIPE_VERSION, asdict(recipe), ultralytics.__version__, photos]).encode())
    for label in recipe.labels:
        h.update(instrument_picture(label).tobytes())
    return h.hexdigest()[:12]


def default_cache() -> Path:
    """``$AVSEP_TEST_DETECTOR_DIR``, or ``test-detector`` in avsep's cache directory."""
    return Path(os.environ.get("AVSEP_TEST_DETECTOR_DIR") or cache_dir() / "test-detector")


def cached_tiny_yolo(recipe: TinyYoloRecipe = TinyYoloRecipe(), cache: Optional[Path] = None) -> Path:
    """The weights of ``recipe``, trained now unless an earlier run left them in ``cache``.

    Training runs in a child process: ultralytics changes process-wide state while training
    (seeds, deterministic algorithms, torch's thread count) that must not leak into the caller.
    """
    dest = Path(cache or default_cache()) / f"tiny-yolo-{recipe_key(recipe)}.pt"
    if dest.is_file():
        return dest
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="avsep-tiny-yolo-") as tmp:
        log_path = Path(tmp) / "train.log"
        with open(log_path, "w") as out:
            done = subprocess.run([sys.executable, "-m", __name__, tmp, json.dumps(asdict(recipe))],
                                  stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"training the tiny YOLO failed (exit {done.returncode}); its log ends:\n{tail}")
        with atomic_path(dest) as part:  # a killed run leaves no half-written weights
            shutil.copyfile(log_path.read_text().splitlines()[-1], part)
    log.info("trained the tiny test detector in %.0f s: %s", time.monotonic() - start, dest)
    return dest


def main(argv: Optional[Sequence[str]] = None) -> None:
    """``python -m avsep.inference.detector_testing WORKDIR RECIPE_JSON``: train in WORKDIR and
    print the path of the weights as the last line."""
    workdir, recipe_json = argv if argv is not None else sys.argv[1:]
    fields = json.loads(recipe_json)
    weights = train_tiny_yolo(Path(workdir), TinyYoloRecipe(**{**fields, "labels": tuple(fields["labels"])}))
    print(weights, flush=True)


if __name__ == "__main__":
    main()
