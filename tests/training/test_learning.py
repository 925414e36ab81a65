"""End to end on generated videos: training lowers the loss and separates better than the mixture.

One session-scoped run is shared: generate solo and duet videos, preprocess them, and train the
`small` model for a fixed number of steps (about 1-2 minutes on 2 cores).
"""
import csv
import subprocess

import numpy as np
import pytest

from avsep.config import Config, RunSettings
from avsep.data.decode import load_audio, read_wav
from avsep.evaluation.evaluate import evaluate
from avsep.evaluation.metrics import bss_eval_sources
from tests.conftest import PYTHON

pytestmark = pytest.mark.slow
STEPS = 160


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    import torch

    from avsep.data.preprocess import preprocess
    from avsep.training.trainer import Trainer
    from avsep.synth import load_duets, make_duets, make_solo_collection

    root = tmp_path_factory.mktemp("learning")
    make_solo_collection(root / "videos", videos_per_label=4, seed=1, workers=2, progress=False)
    make_duets(root / "duets", pairs=[("violin", "drum")], count=1, seed=7)
    preprocess(root / "videos", root / "data", workers=2, val_frac=0.25, test_frac=0.25, progress=False)
    cfg = Config.preset("small").replace(epochs=1, epoch_size=STEPS * 16, val_pairs=8)
    torch.manual_seed(0)
    Trainer(cfg, root / "data" / "train.csv", root / "data" / "val.csv", root / "run",
            RunSettings(device="cpu", save_minutes=60, progress=False)).fit()
    return {"root": root, "run": root / "run", "data": root / "data", "duet": load_duets(root / "duets")[0]}


def test_training_lowers_the_loss(trained):
    with open(trained["run"] / "log.csv", newline="") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert len(losses) == STEPS
    assert np.mean(losses[-30:]) < 0.85 * np.mean(losses[:30])


def test_trained_model_beats_the_mixture_on_held_out_videos(trained):
    summary = evaluate(trained["run"] / "best.pt", trained["data"] / "test.csv", pairs=30, progress=False)
    model, mixture = summary["model"]["SDR"]["median"], summary["mixture"]["SDR"]["median"]
    assert model > mixture + 1.0, f"model {model:.2f} dB vs mixture {mixture:.2f} dB"
    assert summary["model"]["SIR"]["median"] > summary["mixture"]["SIR"]["median"] + 1.0


def test_separate_cli_splits_a_duet_by_boxes(trained, tmp_path):
    duet = trained["duet"]
    boxes = [",".join(str(v) for v in source["box"]) for source in duet["sources"]]
    result = subprocess.run([PYTHON, "-m", "avsep", "separate", duet["video"], "--checkpoint",
                             str(trained["run"] / "best.pt"), "--box", boxes[0], "--box", boxes[1],
                             "--out", str(tmp_path), "--heatmap"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    mixture = read_wav(tmp_path / "mixture.wav")
    estimates = np.stack([read_wav(tmp_path / f"region{i}.wav") for i in (1, 2)])
    assert estimates.shape == (2, len(mixture))
    stems = [load_audio(s["stem"], 11025) for s in duet["sources"]]
    n = min(len(mixture), *(len(s) for s in stems))
    reference = np.stack([s[:n] for s in stems]).astype(np.float64)
    model_sdr = bss_eval_sources(reference, estimates[:, :n].astype(np.float64))[0]
    mixture_sdr = bss_eval_sources(reference, np.stack([mixture[:n]] * 2).astype(np.float64))[0]
    assert model_sdr.mean() > mixture_sdr.mean(), f"{model_sdr} vs mixture {mixture_sdr}"
    assert (tmp_path / "heatmap.png").stat().st_size > 1000


def test_separate_cli_bad_input_is_one_line(trained, tmp_path):
    checkpoint = str(trained["run"] / "best.pt")
    video = trained["duet"]["video"]
    cases = [
        (["--point", "1,2,3"], "--point '1,2,3': expected 2 comma-separated numbers"),
        (["--point", "9999,1"], "outside the 512x256 frame"),
        ([], "give at least one --point"),
    ]
    for extra, message in cases:
        result = subprocess.run([PYTHON, "-m", "avsep", "separate", video, "--checkpoint", checkpoint,
                                 "--out", str(tmp_path), *extra], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
