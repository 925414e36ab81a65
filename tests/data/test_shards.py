"""Tar shards: a write-then-read round trip, disjoint streams, resumable conversion, fewer files."""
import subprocess
import tarfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from avsep.config import Config
from avsep.data import shard_stream
from avsep.data.index import frame_path, read_index
from avsep.data.mixtures import MixtureDataset, fixed_mixtures
from avsep.data.shard_stream import ShardMixtureSet, ShardStream, stream_samples, windows
from avsep.data.shard_writer import write_shards
from avsep.data.shards import SampleReader, read_split
from avsep.data.videos import VideoFiles
from avsep.errors import AvsepError
from tests.conftest import PYTHON, write_tiny_dataset

CFG = Config.preset("small").replace(batch_size=4, epoch_size=32, num_frames=2, frame_stride=1.0)


@pytest.fixture(scope="module")
def shards(tiny_dataset, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shards")
    write_shards(tiny_dataset, out, shard_mb=0.7, progress=False)  # two videos a shard
    return out


@pytest.fixture(scope="module")
def wide(tmp_path_factory) -> tuple[Path, Path]:
    """24 training videos of 6 labels, in 12 shards, for streams split 4 ways."""
    root = tmp_path_factory.mktemp("wide")
    write_tiny_dataset(root, labels=("a", "b", "c", "d", "e", "f"), per_label=8, seconds=3.5)
    write_shards(root, root / "shards", shard_mb=0.35, progress=False)
    return root, root / "shards"


def test_round_trip_is_identical(tiny_dataset, shards):
    reader = SampleReader(CFG.sample_rate)
    for split in ("train", "val", "test"):
        rows = {row.audio.stem: row for row in read_index(tiny_dataset / f"{split}.csv")}
        samples = read_split(shards / f"{split}.json").samples
        assert sorted(s.name for s in samples) == sorted(rows)
        for ref in samples:
            video, files = reader.read(ref), VideoFiles(rows[ref.name], CFG.sample_rate)
            row = rows[ref.name]
            assert video.wav == row.audio.read_bytes()
            assert all(video.frames[i] == frame_path(row, i).read_bytes() for i in range(row.num_frames))
            assert video.audio_length() == files.audio_length() and video.num_frames == files.num_frames
            for start, length in ((0, 5000), (70000, 20000), (-300, 1000)):
                assert np.array_equal(video.audio(start, length), files.audio(start, length))
            assert video.frame(5, 112).tobytes() == files.frame(5, 112).tobytes()
    # Validation from shards is validation from the folder: same fixed mixtures, same tensors.
    rows, split = read_index(tiny_dataset / "val.csv"), read_split(shards / "val.json")
    groups = fixed_mixtures(rows, 2, 4, CFG.seed)
    assert fixed_mixtures(split.samples, 2, 4, CFG.seed) == groups
    folder, sharded = MixtureDataset(rows, CFG, train=False, mixtures=groups), ShardMixtureSet(split, CFG, groups)
    for i in range(len(groups)):
        a, b = folder[i], sharded[i]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_shards_are_webdataset_style_tars_with_a_hundred_times_fewer_files(tiny_dataset, tmp_path):
    summary = write_shards(tiny_dataset, tmp_path, progress=False)  # the default 512 MB: one shard a split
    folder_files = sum(1 for p in tiny_dataset.rglob("*") if p.suffix in (".wav", ".jpg", ".csv"))
    assert summary["source_files"] == folder_files == 1029
    assert summary["shard_files"] == len(list(tmp_path.iterdir())) == 7  # 3 tars, 3 manifests, the ledger
    assert folder_files / summary["shard_files"] >= 100
    with tarfile.open(tmp_path / "val-000000.tar") as tar:
        names = tar.getnames()
    assert names[:3] == ["low/low3.json", "low/low3.wav", "low/low3.000001.jpg"] and len(names) == 3 * 58


def read_epoch(split, epoch, world, workers, monkeypatch, buffer=4):
    """Run every (rank, worker) stream of an epoch in this process; returns the samples each read
    and the rows of the items each made."""
    reads, rows = {}, {}
    real_read = SampleReader.read

    for rank in range(world):
        for worker in range(workers):
            stream = ShardStream(split, CFG, seed=5, rank=rank, world=world, workers=workers, buffer=buffer)
            stream.epoch = epoch
            seen = reads.setdefault((rank, worker), [])
            monkeypatch.setattr(SampleReader, "read", lambda self, ref, seen=seen: seen.append(ref.index) or real_read(self, ref))
            monkeypatch.setattr(shard_stream, "get_worker_info", lambda worker=worker: SimpleNamespace(id=worker))
            rows[(rank, worker)] = [item["rows"].tolist() for item in stream]
    monkeypatch.undo()
    return reads, rows


@pytest.mark.parametrize("shard_mb", [0.35, 50])  # 12 shards (whole shards per stream), or 1 (samples in turn)
def test_no_sample_is_read_twice_in_an_epoch_across_ranks_and_workers(wide, shard_mb, monkeypatch, tmp_path):
    root, shard_dir = wide
    if shard_mb != 0.35:
        write_shards(root, tmp_path, shard_mb=shard_mb, progress=False)
        shard_dir = tmp_path
    split = read_split(shard_dir / "train.json")
    orders = []
    for epoch in (0, 1):
        reads, rows = read_epoch(split, epoch, world=2, workers=2, monkeypatch=monkeypatch)
        everything = sorted(i for seen in reads.values() for i in seen)
        assert everything == list(range(len(split.samples))), "every video once, by one stream"
        for key, items in rows.items():
            assert len(items) == CFG.steps_per_epoch // 2 * 2  # 8 batches a rank, 4 of them a worker's, 2 items each
            assert all(set(mixture) <= set(reads[key]) for mixture in items), "a stream mixes what it read"
        orders.append(reads)
    assert orders[0] != orders[1], "each epoch splits the data anew"


def test_streams_match_a_real_loader_and_resume_exactly(wide, monkeypatch):
    _root, shard_dir = wide
    split = read_split(shard_dir / "train.json")
    stream = ShardStream(split, CFG, seed=5, rank=1, world=2, workers=2, buffer=4)
    loader = torch.utils.data.DataLoader(stream, batch_size=2, num_workers=2)
    batches = list(loader)
    assert len(batches) == CFG.steps_per_epoch
    _reads, rows = read_epoch(split, 0, world=2, workers=2, monkeypatch=monkeypatch)
    for k, batch in enumerate(batches):  # batch k comes from worker k % 2
        assert batch["rows"].tolist() == rows[(1, k % 2)][2 * (k // 2): 2 * (k // 2) + 2]
    stream.first_batch = 3  # resume at batch 3: the same batches, bit for bit
    resumed = list(torch.utils.data.DataLoader(stream, batch_size=2, num_workers=2))
    assert len(resumed) == CFG.steps_per_epoch - 3
    for a, b in zip(batches[3:], resumed):
        assert all(torch.equal(a[key], b[key]) for key in a)


def test_windows_read_everything_and_hold_enough_labels():
    labels = [0, 0, 0, 1, 1, 2, 2, 2, 0, 1]
    spans = windows(labels, items=7, buffer=3, num_mix=2)
    assert spans[-1][1] == len(labels) and all(len(set(labels[lo:hi])) >= 2 for lo, hi in spans)
    assert [hi for _, hi in spans] == sorted(hi for _, hi in spans)
    with pytest.raises(AvsepError, match="fewer than 2 labels"):
        windows([3, 3, 3], items=2, buffer=2, num_mix=2)
    assert stream_samples.__doc__


KILL_AFTER = """
import os, signal, sys, tarfile
count = [0]
add = tarfile.TarFile.addfile
def addfile(self, *args, **kwargs):
    count[0] += 1
    if count[0] == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)  # a kill -9 in the middle of a shard
    return add(self, *args, **kwargs)
tarfile.TarFile.addfile = addfile
from avsep.cli import main
main(["shard", sys.argv[1], sys.argv[2], "--shard-size", "0.7", "--no-progress"])
"""


def test_a_killed_conversion_reruns_to_complete_shards(tiny_dataset, shards, tmp_path):
    out = tmp_path / "shards"
    killed = subprocess.run([PYTHON, "-c", KILL_AFTER, str(tiny_dataset), str(out), "150"], capture_output=True)
    assert killed.returncode == -9
    assert list(out.glob(".*.part")) and not (out / "train.json").exists(), "killed inside the second shard"
    done = sorted(p.name for p in out.glob("*.tar"))
    assert done == ["train-000000.tar"]
    rerun = subprocess.run([PYTHON, "-m", "avsep", "shard", str(tiny_dataset), str(out), "--shard-size", "0.7",
                            "--no-progress"], capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert "9 videos in 5 shard(s)" in rerun.stdout
    assert not list(out.glob(".*.part"))
    # Complete shards only, byte for byte those of a conversion that was never interrupted.
    names = sorted(p.name for p in shards.iterdir() if p.suffix in (".tar", ".json"))
    assert names == sorted(p.name for p in out.iterdir() if p.suffix in (".tar", ".json"))
    assert all((shards / name).read_bytes() == (out / name).read_bytes() for name in names)


def test_bad_input_is_one_line(tiny_dataset, tmp_path):
    for args, message in [([str(tmp_path / "nowhere"), str(tmp_path / "s")], "no train.csv, val.csv or test.csv"),
                          ([str(tiny_dataset), str(tmp_path / "s"), "--shard-size", "0"], "--shard-size 0.0")]:
        result = subprocess.run([PYTHON, "-m", "avsep", "shard", *args], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(AvsepError, match="not an avsep shard manifest"):
        (tmp_path / "x.json").write_text("{}")
        read_split(tmp_path / "x.json")


def test_an_empty_split_gets_no_shards(tiny_dataset, tmp_path):
    from avsep.data.index import write_index

    data = tmp_path / "data"
    write_index(data / "train.csv", read_index(tiny_dataset / "train.csv"))  # absolute paths to the same files
    (data / "val.csv").write_text("")  # what preprocess writes with --val-frac 0
    summary = write_shards(data, tmp_path / "shards", progress=False)
    assert list(summary["splits"]) == ["train"] and not (tmp_path / "shards" / "val.json").exists()


def test_preprocess_writes_shards_too(tmp_path):
    import json

    from tests.data.test_preprocess import make_video

    for label in ("flute", "drum"):
        (tmp_path / "src" / label).mkdir(parents=True)
        for i in range(2):
            make_video(tmp_path / "src" / label / f"{label}{i}.mp4", tone=300.0 * (i + 1))
    result = subprocess.run([PYTHON, "-m", "avsep", "preprocess", str(tmp_path / "src"), str(tmp_path / "data"),
                             "--shards", str(tmp_path / "shards"), "--workers", "1", "--min-seconds", "1.5",
                             "--frame-size", "64", "--val-frac", "0", "--test-frac", "0", "--no-progress"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "train: 4 videos in 1 shard(s)" in result.stdout
    split = read_split(tmp_path / "shards" / "train.json")
    video = SampleReader(11025).read(split.samples[0])
    assert video.meta["fps"] == 8.0 and video.meta["sample_rate"] == 11025 and video.num_frames == 16


def test_a_damaged_shard_is_one_clear_error(shards, tmp_path):
    import shutil

    copy = tmp_path / "shards"
    shutil.copytree(shards, copy)
    split = read_split(copy / "val.json")
    ref = split.samples[1]
    data = bytearray(ref.shard.read_bytes())
    data[ref.offset + 257:ref.offset + 262] = b"xxxxx"  # the second sample's first header
    ref.shard.write_bytes(bytes(data))
    reader = SampleReader(CFG.sample_rate)
    assert reader.read(split.samples[0]).num_frames == split.samples[0].num_frames
    with pytest.raises(AvsepError, match="unexpected tar header"):
        reader.read(ref)
    ref.shard.write_bytes(bytes(data[:ref.offset + 1000]))  # truncated
    with pytest.raises(AvsepError, match="shorter than its manifest"):
        SampleReader(CFG.sample_rate).read(ref)


def test_shard_items_follow_the_augmentation_ramp_by_step(wide, monkeypatch):
    """Every item of batch k of epoch e is for step e * steps_per_epoch + k, on every rank, and
    after a resume at batch k too."""
    import avsep.data.mixtures as mixtures
    _root, shard_dir = wide
    seen = []
    monkeypatch.setattr(mixtures, "ramped", lambda c, step: seen.append(step) or c)
    split = read_split(shard_dir / "train.json")
    stream = ShardStream(split, CFG.replace(aug_ramp=1000), seed=5, rank=1, world=2, workers=1, buffer=4)
    stream.epoch, stream.first_batch = 2, 5
    list(stream)
    first = 2 * CFG.steps_per_epoch
    assert seen == [first + k for k in range(5, CFG.steps_per_epoch) for _ in range(2)]
