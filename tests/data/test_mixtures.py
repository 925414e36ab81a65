import os
from pathlib import Path

import numpy as np
import pytest
import torch

from avsep.config import Config
from avsep.data.mixtures import LOADER_NICENESS, MixtureDataset, fixed_mixtures, make_loader
from avsep.errors import AvsepError
from avsep.data.index import IndexRow, read_index
from avsep.training.data import data_loader


@pytest.fixture(scope="module")
def cfg():
    return Config.preset("small").replace(num_frames=3, frame_stride=1.0)


def test_mixture_is_the_sum_of_its_sources(tiny_dataset, cfg):
    dataset = MixtureDataset(read_index(tiny_dataset / "train.csv"), cfg, train=True, length=8)
    for i in range(4):
        item = dataset[i]
        assert item["sources"].shape == (2, cfg.audio_len)
        assert torch.allclose(item["mix"], item["sources"].sum(dim=0))
        assert item["frames"].shape == (2, 3, 3, cfg.img_size, cfg.img_size)
        assert item["labels"][0] != item["labels"][1], "a mix never holds two videos of the same label"


@pytest.mark.parametrize("num_mix", [3])
def test_mixtures_of_more_sources_have_distinct_labels(tiny_dataset, cfg, num_mix):
    dataset = MixtureDataset(read_index(tiny_dataset / "train.csv"), cfg.replace(num_mix=num_mix), length=6)
    for i in range(6):
        assert len(set(dataset[i]["labels"].tolist())) == num_mix


def test_training_items_are_random_but_reproducible(tiny_dataset, cfg):
    rows = read_index(tiny_dataset / "train.csv")
    a, b = MixtureDataset(rows, cfg, length=4), MixtureDataset(rows, cfg, length=4)
    assert torch.equal(a[1]["mix"], b[1]["mix"])
    assert not torch.equal(a[1]["mix"], a[2]["mix"])
    b.epoch = 1
    assert not torch.equal(a[1]["mix"], b[1]["mix"])


def test_an_item_can_name_its_epoch(tiny_dataset, cfg):
    """``dataset[(epoch, index)]`` is item ``index`` of that epoch, whatever ``dataset.epoch`` says:
    how one loader that spans every epoch of a run asks for its items."""
    dataset = MixtureDataset(read_index(tiny_dataset / "train.csv"), cfg, length=4)
    dataset.epoch = 1
    of_epoch_1 = dataset[2]
    dataset.epoch = 0
    named = dataset[(1, 2)]
    assert all(torch.equal(named[k], of_epoch_1[k]) for k in ("mix", "sources", "frames", "owner", "rows"))
    assert not torch.equal(named["mix"], dataset[2]["mix"])


def test_training_items_follow_the_augmentation_ramp_by_step(tiny_dataset, cfg, monkeypatch):
    """Item i of epoch e is for step e * steps_per_epoch + i // batch_size (the trainer's order)."""
    import avsep.data.mixtures as mixtures
    seen = []
    monkeypatch.setattr(mixtures, "ramped", lambda c, step: seen.append(step) or c)
    ramp = cfg.replace(aug_ramp=1000, batch_size=4, epoch_size=40)
    dataset = MixtureDataset(read_index(tiny_dataset / "train.csv"), ramp, length=40)
    dataset.epoch = 2
    for index in (0, 3, 4, 39):
        dataset[index]
    assert seen == [20, 20, 21, 29]


def test_mixtures_are_at_target_loudness_and_gains_vary_only_in_training(tiny_dataset, cfg):
    rows = read_index(tiny_dataset / "train.csv")
    train = MixtureDataset(rows, cfg, length=20)
    ratios = []
    for i in range(20):
        item = train[i]
        assert float(item["mix"].pow(2).mean().sqrt()) == pytest.approx(cfg.target_rms, rel=1e-4)
        level = item["sources"].pow(2).mean(dim=1).sqrt()
        ratios.append(float(level[0] / level[1]))
    factor = 10 ** (2 * cfg.gain_db / 20)  # two independent gains in +-gain_db
    assert max(ratios) / min(ratios) > 1.3 and 1 / factor * 0.99 <= min(ratios) and max(ratios) <= factor * 1.01
    evaluation = MixtureDataset(rows, cfg, train=False, mixtures=fixed_mixtures(rows, 2, 5, seed=0))
    for i in range(5):
        item = evaluation[i]
        level = item["sources"].pow(2).mean(dim=1).sqrt().numpy()
        assert level[0] == pytest.approx(level[1], rel=1e-3), "equal loudness in evaluation"
        assert float(item["mix"].pow(2).mean().sqrt()) == pytest.approx(cfg.target_rms, rel=1e-4)


def test_fixed_mixtures_are_seeded_distinct_and_never_repeat_a_label(tiny_dataset):
    rows = read_index(tiny_dataset / "test.csv")
    groups = fixed_mixtures(rows, 2, 8, seed=3)
    assert groups == fixed_mixtures(rows, 2, 8, seed=3)
    assert groups != fixed_mixtures(rows, 2, 8, seed=4)
    for group in groups:
        assert rows[group[0]].label != rows[group[1]].label
    assert len({tuple(sorted(g)) for g in groups}) == 8
    # 3 labels of 2 videos hold 12 distinct pairs: asking for more gives those 12, each once.
    every = fixed_mixtures(rows, 2, 50, seed=3)
    assert len(every) == 12 and len({tuple(sorted(g)) for g in every}) == 12


def test_fixed_mixtures_use_every_video_about_equally_often():
    # One violin among 17 validation videos: drawn label first, it would be in about 2 of every
    # 5 pairs (9 of 24) and could decide the median alone.
    labels = ["violin"] + [label for label in ("drum", "flute", "guitar", "saxophone") for _ in range(4)]
    rows = [IndexRow(Path(f"a{i}.wav"), Path(f"f{i}"), 64, label) for i, label in enumerate(labels)]
    groups = fixed_mixtures(rows, 2, 24, seed=1234)
    uses = np.bincount(np.concatenate(groups), minlength=len(rows))
    assert len(groups) == 24 and len({tuple(sorted(g)) for g in groups}) == 24 and uses[0] <= 4
    assert uses.max() - uses.min() <= 2
    assert all(rows[a].label != rows[b].label for a, b in groups)


def test_evaluation_views_are_owned_by_their_source(tiny_dataset, cfg):
    rows = read_index(tiny_dataset / "test.csv")
    item = MixtureDataset(rows, cfg, train=False, mixtures=fixed_mixtures(rows, 2, 1, seed=0))[0]
    g = cfg.grid_size
    assert item["owner"].shape == (2, g, g)
    assert item["owner"][0].eq(0).all() and item["owner"][1].eq(1).all()


def test_too_few_labels_is_a_clear_error(tiny_dataset, cfg):
    rows = [r for r in read_index(tiny_dataset / "train.csv") if r.label == "low"]
    with pytest.raises(AvsepError, match="1 label"):
        MixtureDataset(rows, cfg)


def test_loader_batches(tiny_dataset, cfg):
    dataset = MixtureDataset(read_index(tiny_dataset / "train.csv"), cfg, length=6)
    batch = next(iter(make_loader(dataset, 3, workers=1)))
    assert batch["mix"].shape == (3, cfg.audio_len)
    assert batch["frames"].shape == (3, 2, 3, 3, cfg.img_size, cfg.img_size)


class _Niceness(torch.utils.data.Dataset):
    """Each item is the scheduling priority and torch threads of the process that built it."""

    def __len__(self):
        return 2

    def __getitem__(self, index):
        return torch.tensor([os.nice(0), torch.get_num_threads()])


def _mixture_loader(dataset, device):
    return make_loader(dataset, batch_size=2, workers=1, device=device)


def _training_loader(dataset, device):
    return data_loader(dataset, batch_size=2, workers=1, device=torch.device(device))


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no process priorities on this platform")
@pytest.mark.parametrize("loader", [_mixture_loader, _training_loader])
@pytest.mark.filterwarnings("ignore:'pin_memory' argument is set as true")  # the training loader "beside a GPU"
def test_loader_processes_yield_the_cores_to_a_model_on_the_cpu(loader):
    mine = os.nice(0)
    if mine >= LOADER_NICENESS:
        pytest.skip("this process already runs at the lowest priority")
    built = next(iter(loader(_Niceness(), "cpu")))
    assert built[:, 0].tolist() == [min(19, mine + LOADER_NICENESS)] * 2, "loaders run at the lowest priority"
    assert built[:, 1].tolist() == [1, 1], "loaders use one torch thread (torch's worker loop sets it)"
    assert os.nice(0) == mine, "the main process keeps its priority"
    beside_a_gpu = next(iter(loader(_Niceness(), "cuda")))
    assert beside_a_gpu[:, 0].tolist() == [mine] * 2, "with a GPU, loaders keep their priority"


def test_rows_with_missing_files_are_dropped_with_a_warning(tiny_dataset, caplog):
    from dataclasses import replace

    from avsep.data.mixtures import check_rows

    rows = read_index(tiny_dataset / "train.csv")
    broken = [replace(rows[0], audio=rows[0].audio.with_name("gone.wav"))] + rows[1:]
    with caplog.at_level("WARNING", logger="avsep"):
        kept = check_rows(broken, "train.csv")
    assert kept == rows[1:]
    assert f"skipping 1 of {len(rows)} videos" in caplog.text and "gone.wav" in caplog.text
    with pytest.raises(AvsepError, match="none of its 1 videos"):
        check_rows(broken[:1], "train.csv")


def test_check_rows_with_headers_leaves_out_videos_whose_wav_does_not_read(tiny_dataset, tmp_path, caplog):
    # Evaluation and validation cannot swap a video mid-way as training does: their rows' WAV
    # headers are read first, and a video whose audio is not a WAV is logged and left out.
    from dataclasses import replace

    from avsep.data.mixtures import check_rows

    rows = read_index(tiny_dataset / "train.csv")
    text = tmp_path / "notes.wav"
    text.write_text("a text file, not a WAV")
    short_fmt = tmp_path / "short.wav"  # a header cut inside its fmt chunk
    short_fmt.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00")
    broken = [replace(rows[0], audio=text), replace(rows[1], audio=short_fmt)] + rows[2:]
    assert check_rows(broken, "val.csv") == broken  # without headers: only the files' presence
    with caplog.at_level("WARNING", logger="avsep"):
        kept = check_rows(broken, "val.csv", headers=True)
    assert kept == rows[2:]
    assert "skipping 2 of" in caplog.text and "notes.wav: not a WAV file" in caplog.text
    with pytest.raises(AvsepError, match="none of its 1 videos has readable audio"):
        check_rows(broken[:1], "val.csv", headers=True)


def test_an_unreadable_training_video_is_logged_and_replaced(tiny_dataset, tmp_path, cfg, caplog):
    from dataclasses import replace

    rows = read_index(tiny_dataset / "train.csv")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF....not really a wav file at all")
    rows[0] = replace(rows[0], audio=corrupt)
    dataset = MixtureDataset(rows, cfg, length=30)
    with caplog.at_level("WARNING", logger="avsep"):
        items = [dataset[i] for i in range(30)]
    assert caplog.text.count("skipping") == 1 and "corrupt.wav" in caplog.text, "logged once, then never drawn again"
    assert all(0 not in item["rows"].tolist() for item in items)
