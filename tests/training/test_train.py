"""Training runs: checkpoints, resume after kill -9, and the run folder's contents."""
import csv
import signal
import subprocess
import time

import pytest
import torch

from tests.conftest import PYTHON

TINY = ["--set", "channels=8", "--set", "resnet_width=8", "--set", "unet_channels=8", "--set", "batch_size=4",
        "--set", "epoch_size=16", "--set", "val_pairs=4", "--set", "epochs=1000", "--workers", "0"]


def train_cmd(data, out, *extra):
    return [PYTHON, "-m", "avsep", "train", "--data", str(data), "--out", str(out), *TINY, *extra]


def log_steps(run):
    with open(run / "log.csv", newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


@pytest.mark.slow
def test_resume_after_kill_9(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    proc = subprocess.Popen(train_cmd(tiny_dataset, run, "--set", "checkpoint_minutes=0.02"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (run / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2.5)  # kill at an arbitrary moment after the first checkpoint, likely mid-step or mid-save
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = torch.load(run / "last.pt", weights_only=True)["train_state"]["step"]
    assert killed_at >= 1
    result = subprocess.run(train_cmd(tiny_dataset, run, "--resume", "--max-minutes", "0.1"),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["train_state"]["step"] > killed_at
    steps = log_steps(run)
    assert steps == list(range(1, len(steps) + 1)), "the log continues where the checkpoint was, without gaps"
    assert steps[-1] == state["train_state"]["step"]
    assert not list(run.glob("*.part"))
    assert (run / "best.pt").exists() and (run / "config.json").exists() and (run / "curves.png").exists()


def test_existing_run_needs_resume_and_bad_data_is_one_line(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "last.pt").write_bytes(b"x")
    result = subprocess.run(train_cmd(tiny_dataset, run), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "pass --resume" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run(train_cmd(tmp_path / "nowhere", tmp_path / "run2"), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "no train.csv" in result.stderr and "Traceback" not in result.stderr
    result = subprocess.run(train_cmd(tiny_dataset, tmp_path / "run3", "--set", "unet_levels=9"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "unet_levels must be" in result.stderr
