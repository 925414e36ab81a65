"""Pictures of the generator: background pools, rooms, sprites, people, scenes and their boxes."""
from __future__ import annotations

import hashlib
import itertools
import logging
import os

import numpy as np
import pytest
from PIL import Image

from avsep.synth import CATALOG, background_files
from avsep.synth import backgrounds
from avsep.synth.backgrounds import POOL_PACKAGES, is_excluded, load_photo, make_background
from avsep.synth.people import draw_person
from avsep.synth.rooms import draw_room
from avsep.synth.scenes import SIZE_RANGE, build_scene
from avsep.synth.sprites import PROPS, emoji_font, emoji_sprite, instrument_sprite, prop_shape_sprite, shape_sprite


def _head_hash(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha1(f.read(1 << 16)).hexdigest()


def test_background_pools_are_disjoint_and_never_ukui():
    train, test = background_files("train"), background_files("test")
    if not train or not test:
        pytest.skip("wallpaper packages not installed")
    assert not {p.resolve() for p in train} & {p.resolve() for p in test}
    assert not {_head_hash(p) for p in train} & {_head_hash(p) for p in test}  # not even copies
    for path in train + test:
        assert "ukui" not in str(path).lower() and "ukui" not in str(path.resolve()).lower()
        assert path.stat().st_size >= backgrounds.MIN_BYTES and path.suffix.lower() != ".svg"
    assert "ukui-wallpapers" in backgrounds.EXCLUDED_PACKAGES
    assert all(pkg != "ukui-wallpapers" for pool in POOL_PACKAGES.values() for pkg, _ in pool)
    if not backgrounds.DPKG_INFO.is_dir():
        return  # no package lists to check ownership against
    owners = {pool: set().union(*(backgrounds._dpkg_files(pkg) or () for pkg, _ in POOL_PACKAGES[pool]))
              for pool in ("train", "test")}
    assert all(str(p.resolve()) in owners["train"] for p in train)  # each pool's own packages' files
    assert all(str(p.resolve()) in owners["test"] for p in test)
    for package, _ in POOL_PACKAGES["train"]:  # every installed package supplies its pictures
        owned = backgrounds._dpkg_files(package)
        if owned:
            assert any(str(p.resolve()) in owned for p in train), f"{package} gives no training background"


@pytest.fixture
def shared_folder(tmp_path, monkeypatch):
    """A folder of pictures that both pools' (fake) packages glob, as the two lomiri packages
    share /usr/share/backgrounds, and a folder of the training pool's alone;
    ``install(package, folder, names)`` writes a package's pictures and, unless ``dpkg=False``,
    its dpkg list. The pools' file lists are cached, so they are cleared before and after."""
    shared, own, info = tmp_path / "backgrounds", tmp_path / "art", tmp_path / "dpkg"
    shared.mkdir(), own.mkdir(), info.mkdir()
    monkeypatch.setattr(backgrounds, "DPKG_INFO", info)
    monkeypatch.setattr(backgrounds, "POOL_PACKAGES", {
        "train": (("old-wallpapers", (f"{shared}/*.jpg",)), ("art-wallpapers", (f"{own}/*.jpg",))),
        "test": (("new-wallpapers", (f"{shared}/*.jpg",)),)})

    def install(package: str, folder, names: list[str], dpkg: bool = True) -> list:
        paths = [folder / name for name in names]
        for path in paths:
            path.write_bytes(path.name.encode() * 5_000)
        if dpkg:
            (info / f"{package}.list").write_text("".join(f"{path}\n" for path in paths))
        return paths

    clear = lambda: (backgrounds._dpkg_files.cache_clear(), backgrounds.package_files.cache_clear())
    clear()
    yield shared, own, install
    clear()


def test_pools_that_share_a_folder_take_only_their_own_packages_files(shared_folder):
    shared, own, install = shared_folder
    train = install("old-wallpapers", shared, ["a.jpg"]) + install("art-wallpapers", own, ["d.jpg"])
    test = install("new-wallpapers", shared, ["b.jpg"])
    install("someone-else", shared, ["e.jpg"])  # another package's picture in the shared folder
    assert background_files("train") == tuple(sorted(train))
    assert background_files("test") == tuple(test)


def test_a_package_that_is_not_installed_claims_nothing_in_a_shared_folder(shared_folder):
    # Only the held-out package is installed: its files must not become training backgrounds.
    shared, own, install = shared_folder
    test = install("new-wallpapers", shared, ["b.jpg", "c.jpg"])
    assert background_files("train") == ()
    assert background_files("test") == tuple(test)


def test_without_dpkg_a_shared_folder_belongs_to_neither_pool(shared_folder, monkeypatch):
    # With no dpkg to say which package put them there, pictures of a folder that both pools
    # glob could be held-out ones; a folder of one pool alone is still used.
    shared, own, install = shared_folder
    monkeypatch.setattr(backgrounds, "DPKG_INFO", shared.parent / "no-dpkg")
    install("old-wallpapers", shared, ["a.jpg"], dpkg=False), install("new-wallpapers", shared, ["b.jpg"], dpkg=False)
    art = install("art-wallpapers", own, ["d.jpg"], dpkg=False)
    assert background_files("train") == tuple(art)
    assert background_files("test") == ()


def test_a_missing_package_of_a_pool_is_named_once(shared_folder, monkeypatch, caplog):
    shared, own, install = shared_folder
    install("art-wallpapers", own, ["d.jpg"])  # old-wallpapers, the other training package, is not installed
    monkeypatch.setattr(backgrounds, "warn_once", lambda key, msg: logging.getLogger("avsep.synth").warning(msg))
    with caplog.at_level(logging.WARNING, logger="avsep.synth"):
        assert backgrounds.photos("train") == (own / "d.jpg",)
    assert backgrounds.missing_packages("train") == ["old-wallpapers"]
    assert "1 background photographs of the 'train' pool installed; install old-wallpapers" in caplog.text


def test_reserved_wallpapers_are_excluded_by_path_and_by_package(tmp_path, monkeypatch):
    photo = tmp_path / "wallpapers" / "sea.jpg"
    photo.parent.mkdir()
    photo.write_bytes(b"\xff" * 30_000)
    assert is_excluded(tmp_path / "ukui-wallpapers" / "x.jpg") and is_excluded("/usr/share/backgrounds/UKUI/a.png")
    assert not is_excluded(photo)
    info = tmp_path / "dpkg"
    info.mkdir()
    (info / "ukui-wallpapers.list").write_text(f"/usr\n{photo}\n")  # a ukui file outside a ukui folder
    monkeypatch.setattr(backgrounds, "DPKG_INFO", info)
    backgrounds._dpkg_files.cache_clear()
    try:
        assert is_excluded(photo)
    finally:
        backgrounds._dpkg_files.cache_clear()


def test_a_folder_of_pictures_replaces_a_pools_packages_within_use_folder(tmp_path, monkeypatch):
    monkeypatch.delenv(backgrounds.FOLDER_ENV["test"], raising=False)
    monkeypatch.setenv("AVSEP_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "pictures"
    (folder / "trip").mkdir(parents=True)
    Image.new("RGB", (320, 240), (200, 30, 180)).save(folder / "trip" / "a.jpg")
    Image.new("RGB", (64, 64), (200, 30, 180)).save(folder / "b.PNG")  # small pictures are kept too
    (folder / "notes.txt").write_text("not a picture")
    packages = background_files("test")
    with backgrounds.use_folder("test", folder):
        assert background_files("test") == (folder / "b.PNG", folder / "trip" / "a.jpg")
        assert background_files("train") == backgrounds.package_files("train")  # the other pool keeps its own
        assert backgrounds.missing_packages("test") == []
        crops = [np.asarray(make_background((48, 32), np.random.default_rng(seed), "test"), np.float32)
                 for seed in range(8)]
    assert background_files("test") == packages  # as before, after the block
    # A uniform picture cropped whole: some backgrounds are exactly its colour (the others are rooms).
    assert any(np.abs(c - [200, 30, 180]).max() <= 8 for c in crops)


def test_use_folder_expands_the_home_folder_and_restores_the_pool_after_an_error(tmp_path, monkeypatch):
    key = backgrounds.FOLDER_ENV["test"]
    monkeypatch.setenv(key, "/somewhere/before")
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "pics").mkdir()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(tmp_path / "pics" / "a.png")
    with pytest.raises(RuntimeError, match="inside the block"):
        with backgrounds.use_folder("test", "~/pics"):
            assert background_files("test") == (tmp_path / "pics" / "a.png",)
            raise RuntimeError("inside the block")
    assert os.environ[key] == "/somewhere/before"


def test_a_folder_without_pictures_is_refused_and_a_broken_one_gives_a_room(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv(backgrounds.FOLDER_ENV["test"], raising=False)
    with pytest.raises(ValueError, match="not a folder"):
        with backgrounds.use_folder("test", tmp_path / "nowhere"):
            pass
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no pictures"):
        with backgrounds.use_folder("test", tmp_path / "empty"):
            pass
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "cut.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    monkeypatch.setattr(backgrounds, "warn_once", lambda key, msg: logging.getLogger("avsep.synth").warning(msg))
    with backgrounds.use_folder("test", broken), caplog.at_level(logging.WARNING, logger="avsep.synth"):
        img = make_background((64, 48), np.random.default_rng(0), "test")
    assert img.size == (64, 48) and np.asarray(img, np.float32).std() > 10  # a drawn room
    assert "cut.jpg: cannot read this picture" in caplog.text


def test_photo_cache_gives_the_same_pixels(tmp_path, monkeypatch):
    files = background_files("test")
    if not files:
        pytest.skip("wallpaper packages not installed")
    monkeypatch.setenv("AVSEP_CACHE_DIR", str(tmp_path / "cache"))
    first = np.asarray(load_photo.__wrapped__(files[0]))  # builds the cache entry
    assert list((tmp_path / "cache" / "backgrounds").glob("*.jpg"))
    np.testing.assert_array_equal(first, np.asarray(load_photo.__wrapped__(files[0])))  # read from it
    assert max(first.shape[:2]) <= backgrounds.CACHE_MAX_SIDE


def test_backgrounds_fall_back_to_drawn_rooms(monkeypatch, caplog):
    monkeypatch.setattr(backgrounds, "background_files", lambda pool: ())
    monkeypatch.setattr(backgrounds, "warn_once", lambda key, msg: logging.getLogger("avsep.synth").warning(msg))
    with caplog.at_level(logging.WARNING, logger="avsep.synth"):
        img = make_background((160, 120), np.random.default_rng(0), "test")
    assert img.size == (160, 120) and "drawing rooms" in caplog.text
    arr = np.asarray(img, np.float32)
    assert arr.std() > 10  # not a flat colour: wall, floor, furniture
    rooms = {pool: [np.asarray(draw_room((96, 96), np.random.default_rng(s), pool), np.float32).mean((0, 1))
                    for s in range(6)] for pool in ("train", "test")}
    assert not np.allclose(rooms["train"][0], rooms["test"][0])


def test_each_video_gets_its_own_background():
    a = np.asarray(make_background((128, 128), np.random.default_rng(1), "train"), np.float32)
    b = np.asarray(make_background((128, 128), np.random.default_rng(2), "train"), np.float32)
    np.testing.assert_array_equal(a, np.asarray(make_background((128, 128), np.random.default_rng(1), "train")))
    assert np.abs(a - b).mean() > 5


def test_catalog_and_prop_emoji_render():
    if emoji_font() is None:
        pytest.skip("Noto Color Emoji not installed")
    for char in [i.emoji for i in CATALOG.values()] + [p.emoji for p in PROPS]:
        sprite = emoji_sprite(char)
        assert sprite is not None and sprite.getchannel("A").getbbox() is not None, char
    assert emoji_sprite("\U000F0000") is None  # private-use code point: no glyph
    assert not {p.emoji for p in PROPS} & {i.emoji for i in CATALOG.values()}  # props are never instruments


def test_sprites_differ_between_labels():
    def small(img):
        return np.asarray(img.convert("RGBA").resize((48, 48)), dtype=np.float32)

    for sprites in ([instrument_sprite(i) for i in CATALOG.values()], [shape_sprite(i) for i in CATALOG.values()]):
        for a, b in itertools.combinations(range(len(sprites)), 2):
            assert np.abs(small(sprites[a]) - small(sprites[b])).mean() > 5.0
    assert all(prop_shape_sprite(p).getchannel("A").getbbox() for p in PROPS)


def test_people_vary_and_hold_their_instrument():
    figures = [draw_person(20.0, np.random.default_rng(s), (60, 40), "acoustic_guitar") for s in range(4)]
    colours = [np.asarray(f.body, np.float32)[..., :3].sum((0, 1)) / np.asarray(f.body)[..., 3].astype(bool).sum()
               for f in figures]
    assert min(np.abs(a - b).sum() for a, b in itertools.combinations(colours, 2)) > 10  # varied skin and clothes
    for f in figures:
        hands = np.asarray(f.hands)[..., 3] > 0
        ys, xs = np.nonzero(hands)
        ax, ay = f.anchor
        assert hands.any() and abs(np.median(xs) - ax) < 40 and abs(np.median(ys) - ay) < 40  # on the instrument
        assert f.body.height > 4 * 20  # a whole person, head to feet
    bystander = draw_person(20.0, np.random.default_rng(9))
    assert bystander.body.getchannel("A").getbbox() is not None


@pytest.fixture(scope="module")
def scenes():
    labels = [["violin"], ["drum", "flute"], ["saxophone", "acoustic_guitar", "trumpet", "piano"]]
    sizes = [(256, 256), (512, 256), (512, 288)]
    return [build_scene(lab, size, 12, 24, np.random.default_rng(40 + k), pool)
            for k, (lab, size, pool) in enumerate(zip(labels, sizes, ("train", "test", "test")))]


def test_boxes_hold_the_instruments_drawn_pixels(scenes):
    """Hiding one instrument changes pixels only inside its box, in every frame."""
    for scene in scenes:
        boxes = scene.boxes()
        for k, (label, _) in enumerate(scene.sources):
            assert len(boxes[k]) == scene.n_frames
            for i in (0, scene.n_frames // 2, scene.n_frames - 1):
                full, hidden = scene.frame(i).astype(np.int16), scene.frame(i, hide={k}).astype(np.int16)
                changed = np.abs(full - hidden).max(axis=-1) > 2
                x0, y0, x1, y1 = boxes[k][i]
                inside = np.zeros_like(changed)
                inside[y0:y1, x0:x1] = True
                assert changed.any(), label  # the instrument is visible
                assert not (changed & ~inside).any(), (label, i, boxes[k][i])
                assert changed[y0:y1, x0:x1].mean() > 0.1  # and the box is not much larger than it


def test_instruments_do_not_overlap_and_vary_in_size(scenes):
    for scene in scenes:
        boxes = scene.boxes()
        for i in range(scene.n_frames):
            for a, b in itertools.combinations([bx[i] for bx in boxes], 2):
                assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    sides = []
    for seed in range(12):
        scene = build_scene(["violin"], (256, 256), 2, 24, np.random.default_rng(seed))
        x0, y0, x1, y1 = scene.boxes()[0][0]
        sides.append(max(x1 - x0, y1 - y0) / 256)
    assert min(sides) < 0.3 and max(sides) > 0.4 and max(sides) < SIZE_RANGE[1] + 0.1
    centres = [np.mean(build_scene(["drum"], (256, 256), 2, 24, np.random.default_rng(s)).boxes()[0][0][::2])
               for s in range(8)]
    assert np.ptp(centres) > 60  # not always in the middle


def test_scenes_are_deterministic_and_move(scenes):
    scene = scenes[0]
    again = build_scene(["violin"], (256, 256), 12, 24, np.random.default_rng(40), "train")
    np.testing.assert_array_equal(scene.frame(5), again.frame(5))
    assert scene.boxes() == again.boxes()
    frames = np.stack(list(scene.frames())).astype(np.float32)
    assert np.abs(np.diff(frames, axis=0)).mean() > 0.5  # camera, sway, flicker, noise: never a still
