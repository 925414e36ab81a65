"""Backgrounds: random crops of wallpaper photographs, disjoint between the pools, or drawn rooms.

Training videos take their backgrounds from ``plasma-workspace-wallpapers`` (mostly abstract
art) and ``lomiri-wallpapers-16.04`` (photographs: landscapes, plants, rooms, things); held-out
videos from ``mate-backgrounds``, ``lomiri-wallpapers-20.04`` and ``gnome-backgrounds``, so a
model never sees a held-out background while training. Each video crops its own region at its own
scale. The ``ukui-wallpapers`` package is never used: it is kept for other held-out checks.
Without any photograph, ``rooms.draw_room`` draws a room instead. Images are RGB ``PIL.Image``.

A folder of your own pictures can replace a pool's packages (``$AVSEP_TEST_BACKGROUNDS`` or
``$AVSEP_TRAIN_BACKGROUNDS``; ``avsep generate ... --backgrounds DIR`` sets it for one run), so
that held-out scenes can show the kind of place your videos are filmed in. Such a folder is used
as it is: its pictures are neither filtered by size nor checked against the reserved packages.
"""
from __future__ import annotations

import glob
import hashlib
import io
import os
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from avsep.errors import AvsepError
from avsep.synth.logs import warn_once
from avsep.synth.rooms import draw_room
from avsep.synth.seeds import check_pool

# pool -> (Debian package, glob patterns of its pictures)
POOL_PACKAGES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "train": (("plasma-workspace-wallpapers", ("/usr/share/wallpapers/*/contents/images*/*",)),
              ("lomiri-wallpapers-16.04", ("/usr/share/backgrounds/*.jpg",))),
    "test": (("mate-backgrounds", ("/usr/share/backgrounds/mate/*/*",)),
             ("lomiri-wallpapers-20.04", ("/usr/share/backgrounds/*.jpg",)),
             ("gnome-backgrounds", ("/usr/share/backgrounds/gnome/*",))),
}
EXCLUDED_PACKAGES = ("ukui-wallpapers",)
# pool -> the environment variable naming a folder of pictures that replaces its packages
FOLDER_ENV = {"train": "AVSEP_TRAIN_BACKGROUNDS", "test": "AVSEP_TEST_BACKGROUNDS"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
MIN_BYTES = 20_000  # smaller files are solid colours or tiles, not pictures
CACHE_MAX_SIDE = 1600
DPKG_INFO = Path("/var/lib/dpkg/info")
PHOTO_PROB = 0.75  # otherwise a drawn room, with a photograph in its window or frame


@lru_cache(maxsize=None)
def _dpkg_files(package: str) -> frozenset[str] | None:
    """The files the Debian ``package`` installed, or ``None`` when dpkg does not know it."""
    listing = DPKG_INFO / f"{package}.list"
    if not listing.is_file():
        return None
    return frozenset(os.path.realpath(line) for line in listing.read_text(errors="replace").splitlines() if line)


def is_excluded(path: str | os.PathLike) -> bool:
    """True for files of the reserved ``ukui`` wallpapers (by path or by package ownership)."""
    real = os.path.realpath(path)
    if "ukui" in str(path).lower() or "ukui" in real.lower():
        return True
    return any(real in (_dpkg_files(p) or ()) for p in EXCLUDED_PACKAGES)


def _largest_per_folder(paths: list[str]) -> list[str]:
    """Plasma ships each picture at several resolutions in one folder: keep the biggest file."""
    best: dict[str, str] = {}
    for p in paths:
        folder = os.path.dirname(p)
        if folder not in best or os.path.getsize(p) > os.path.getsize(best[folder]):
            best[folder] = p
    return sorted(best.values())


def _shared_patterns() -> set[str]:
    """Glob patterns that packages of both pools use (both lomiri packages install into
    /usr/share/backgrounds): only dpkg's lists can say which pool such a folder's files are for."""
    train, test = ({pat for _, patterns in POOL_PACKAGES[pool] for pat in patterns} for pool in ("train", "test"))
    return train & test


def background_files(pool: str) -> tuple[Path, ...]:
    """The photographs of ``pool`` (``"train"`` or ``"test"``), sorted: every picture under the
    folder that ``$AVSEP_<POOL>_BACKGROUNDS`` names when it is set, else :func:`package_files`."""
    folder = os.environ.get(FOLDER_ENV[check_pool(pool)])
    return folder_files(folder) if folder else package_files(pool)


@lru_cache(maxsize=None)
def folder_files(folder: str | os.PathLike) -> tuple[Path, ...]:
    """Every picture (``IMAGE_SUFFIXES``) under ``folder``, in its subfolders too, sorted; raises
    ``ValueError`` naming the folder when it is not one or holds no picture."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ValueError(f"{folder}: not a folder of background pictures")
    found = tuple(sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
    if not found:
        raise ValueError(f"{folder}: no pictures ({', '.join(sorted(IMAGE_SUFFIXES))}) in this folder")
    return found


def check_folder(folder: str | os.PathLike, option: str | None = None) -> None:
    """Raise AvsepError, prefixed with ``option`` (the argument that gave the folder) when given,
    when ``folder`` is not a folder holding pictures."""
    try:
        folder_files(folder)
    except ValueError as err:
        raise AvsepError(f"{option} {err}" if option else str(err)) from None


@contextmanager
def use_folder(pool: str, folder: str | os.PathLike | None) -> Iterator[None]:
    """Within the block, ``pool``'s backgrounds are the pictures under ``folder`` (nothing changes
    when it is None), for worker processes started inside it too; raises ``ValueError`` naming
    the folder when it holds no picture."""
    if folder is None:
        yield
        return
    key = FOLDER_ENV[check_pool(pool)]
    folder = os.path.abspath(os.path.expanduser(folder))
    folder_files(folder)  # a bad folder fails here, before anything is made
    before = os.environ.get(key)
    os.environ[key] = folder
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


@lru_cache(maxsize=None)
def package_files(pool: str) -> tuple[Path, ...]:
    """The photographs of ``pool``'s packages (``"train"`` or ``"test"``) installed here, sorted.

    A package's files are taken from dpkg's list when dpkg knows it, so pictures of other
    packages in the same folder are not mixed in. Without that list (the package is not
    installed, or the system has no dpkg) its own folders are globbed, but never a folder that
    the other pool's packages share: its files could be the other pool's. ukui files are always
    left out."""
    shared = _shared_patterns()
    out: set[str] = set()
    for package, patterns in POOL_PACKAGES[check_pool(pool)]:
        owned = _dpkg_files(package)
        if owned is None:
            patterns = tuple(pat for pat in patterns if pat not in shared)
        found = [p for pat in patterns for p in glob.glob(pat)
                 if os.path.isfile(p) and Path(p).suffix.lower() in IMAGE_SUFFIXES
                 and os.path.getsize(p) >= MIN_BYTES and not is_excluded(p)
                 and (owned is None or os.path.realpath(p) in owned)]
        out.update(_largest_per_folder(found) if package == "plasma-workspace-wallpapers" else found)
    return tuple(Path(p) for p in sorted(out))


def missing_packages(pool: str) -> list[str]:
    """The Debian packages of ``pool`` that dpkg does not know (none where there is no dpkg)."""
    if not DPKG_INFO.is_dir() or os.environ.get(FOLDER_ENV[check_pool(pool)]):
        return []
    return [package for package, _ in POOL_PACKAGES[check_pool(pool)] if _dpkg_files(package) is None]


def photos(pool: str) -> tuple[Path, ...]:
    """``background_files(pool)``, logging once when there are none (rooms are drawn then) or
    when some of the pool's packages are missing (fewer pictures than the measured recipes had)."""
    files = background_files(pool)
    if not files:
        warn_once(f"bg-{pool}", f"no background photographs of the {pool!r} pool installed: drawing rooms "
                                f"(install {' '.join(p for p, _ in POOL_PACKAGES[pool])})")
    elif missing := missing_packages(pool):
        warn_once(f"bg-{pool}-some", f"{len(files)} background photographs of the {pool!r} pool installed; "
                                     f"install {' '.join(missing)} for all of them (docs/synthetic_data.md)")
    return files


def cache_dir() -> Path:
    """Where downscaled copies of the photographs are kept: ``$AVSEP_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/avsep``, else ``~/.cache/avsep``; plus ``/backgrounds``."""
    root = os.environ.get("AVSEP_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "avsep")
    return Path(root) / "backgrounds"


def _downscaled_jpeg(path: Path) -> bytes:
    with Image.open(path) as img:
        img.draft("RGB", (CACHE_MAX_SIDE, CACHE_MAX_SIDE))  # JPEG: decode at a reduced size
        img = img.convert("RGB")
        img.thumbnail((CACHE_MAX_SIDE, CACHE_MAX_SIDE), Image.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=92)
    return buf.getvalue()


@lru_cache(maxsize=6)
def load_photo(path: str | os.PathLike) -> Image.Image:
    """The photograph at most ``CACHE_MAX_SIDE`` pixels wide or high, RGB.

    Decoding a 5120x2880 wallpaper takes longer than making a whole video, so a downscaled
    JPEG is kept in ``cache_dir()``. Pixels always come from that JPEG (or the same bytes made
    in memory when the cache is not writable), so results do not depend on the cache."""
    path = Path(path)
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{int(st.st_mtime)}|{CACHE_MAX_SIDE}".encode()).hexdigest()[:16]
    cached = cache_dir() / f"{path.stem}-{key}.jpg"
    if cached.is_file():
        data = cached.read_bytes()
    else:
        data = _downscaled_jpeg(path)
        try:
            from avsep.utils import atomic_path

            with atomic_path(cached) as tmp:
                tmp.write_bytes(data)
        except OSError:
            warn_once("bg-cache", f"cannot write the background cache {cached.parent}; decoding photos each time")
    return Image.open(io.BytesIO(data)).convert("RGB")


def photo_crop(path: str | os.PathLike, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A random crop of the photo at ``path`` with the aspect of ``size`` = ``(w, h)``, covering
    30-100% of the largest such crop (so the apparent scale varies), maybe mirrored; RGB."""
    img = load_photo(path)
    w, h = size
    full = min(img.width / w, img.height / h)  # largest crop, in photo pixels per output pixel
    scale = full * float(rng.uniform(0.3, 1.0))
    cw, ch = w * scale, h * scale
    x0, y0 = rng.uniform(0, img.width - cw), rng.uniform(0, img.height - ch)
    out = img.resize((w, h), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch), reducing_gap=2.0)
    return out.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else out


def make_background(size: tuple[int, int], rng: np.random.Generator, pool: str = "train") -> Image.Image:
    """A background of ``size`` = ``(w, h)`` for ``pool``: mostly a photo crop, otherwise a
    drawn room whose window or picture shows a photo; a drawn room alone when no photograph of
    the pool is installed (logged once); RGB."""
    files = photos(pool)
    if not files:
        return draw_room(size, rng, pool, None)
    path = files[int(rng.integers(len(files)))]
    # A broken picture of a folder of your own: one scene without it. Any error, not only PIL's
    # OSError: ultralytics, once imported, patches Image.open, whose failure then tries to import
    # an optional HEIF plugin and raises ImportError instead.
    try:
        load_photo(path)
    except Exception as err:
        warn_once(f"bg-bad-{path}", f"{path}: cannot read this picture ({err}); drawing a room instead")
        return draw_room(size, rng, pool, None)
    if rng.random() < PHOTO_PROB:
        return photo_crop(path, size, rng)
    return draw_room(size, rng, pool, lambda s: photo_crop(path, s, rng))
