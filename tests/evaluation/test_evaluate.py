import json
import subprocess

import numpy as np
import pytest
import torch

from avsep.models.checkpoint import save_checkpoint
from avsep.config import Config
from avsep.evaluation.evaluate import evaluate, format_table, score_mixture
from avsep.models.sop import SoundOfPixels
from tests.conftest import PYTHON


@pytest.fixture(scope="module")
def untrained_checkpoint(tmp_path_factory):
    cfg = Config.preset("small").replace(channels=8, resnet_width=8, unet_channels=8)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "model.pt"
    return save_checkpoint(path, SoundOfPixels(cfg), cfg)


def test_score_mixture_baseline_and_improvement():
    rng = np.random.default_rng(0)
    sources = rng.standard_normal((2, 8000))
    mix = sources.sum(axis=0)
    estimates = {"model": sources + 0.1 * rng.standard_normal((2, 8000))}
    scores = score_mixture(sources, estimates, mix)
    assert np.allclose(scores["mixture"]["SDRi"], 0.0)
    assert all(sdr > 15 for sdr in scores["model"]["SDR"])
    assert np.allclose(np.array(scores["model"]["SDRi"]),
                       np.array(scores["model"]["SDR"]) - np.array(scores["mixture"]["SDR"]))


def test_evaluate_with_oracle_and_report(tiny_dataset, untrained_checkpoint, tmp_path):
    summary = evaluate(untrained_checkpoint, tiny_dataset / "test.csv", pairs=6, oracle="ibm",
                       report_dir=tmp_path / "report", report_items=2, progress=False)
    assert summary["pairs"] == 6 and summary["sources_scored"] == 12
    for system in ("model", "mixture", "oracle_ibm"):
        for metric in ("SDR", "SIR", "SAR", "SI-SDR", "SDRi"):
            assert {"mean", "median"} <= set(summary[system][metric])
    # tones of different pitches: the ideal binary mask separates them far better than the mixture
    assert summary["oracle_ibm"]["SDR"]["median"] > summary["mixture"]["SDR"]["median"] + 10
    html = (tmp_path / "report" / "index.html").read_text()
    assert html.count("<audio") >= 2 * (1 + 2 * 2)  # mixture + gt/pred per source, for two mixtures
    assert "oracle_ibm" in html
    assert "n/a" not in html, "every source shows its scores"
    table = format_table(summary)
    assert table.splitlines()[2].startswith("model") and "mixture" in table


def test_evaluate_cli_json_is_one_object(tiny_dataset, untrained_checkpoint):
    result = subprocess.run([PYTHON, "-m", "avsep", "evaluate", "--checkpoint", str(untrained_checkpoint),
                             "--index", str(tiny_dataset / "test.csv"), "--pairs", "4", "--json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["pairs"] == 4 and summary["model"]["SDR"]["median"] is not None


def test_evaluate_cli_errors_are_one_line(tmp_path, tiny_dataset, untrained_checkpoint):
    missing = subprocess.run([PYTHON, "-m", "avsep", "evaluate", "--checkpoint", str(tmp_path / "nope.pt"),
                              "--index", str(tiny_dataset / "test.csv")], capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "nope.pt: checkpoint not found" in missing.stderr
    bad_index = tmp_path / "bad.csv"
    bad_index.write_text("a.wav,frames\n")
    result = subprocess.run([PYTHON, "-m", "avsep", "evaluate", "--checkpoint", str(untrained_checkpoint),
                             "--index", str(bad_index)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "bad.csv" in result.stderr and "Traceback" not in result.stderr
