"""The command line through subprocesses, as a user runs it."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from avsep.data.decode import read_wav, wav_info
from tests.conftest import PYTHON


def avsep(*args, timeout=600):
    return subprocess.run([PYTHON, "-m", "avsep", *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_every_subcommand():
    result = avsep("--help")
    assert result.returncode == 0
    for command in ("quickstart", "download", "preprocess", "train", "evaluate", "separate"):
        assert command in result.stdout


def test_console_script_is_installed():
    script = shutil.which("avsep", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    assert script, "pip install should put an `avsep` script next to the interpreter"
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("avsep ")


def test_no_command_prints_help_and_fails():
    result = avsep()
    assert result.returncode == 2 and "COMMAND" in result.stdout


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path):
    from avsep.cli.quickstart import DEFAULT_STEPS

    work = tmp_path / "qs"
    args = ("quickstart", "--workdir", str(work), "--steps", "30", "--per-label", "3", "--heldout-per-label", "2",
            "--duets", "1", "--pairs", "6")
    result = avsep(*args)
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    # the held-out figure is the headline, with the in-distribution one and the IBM bound beside it
    assert "held-out scenes (backgrounds, melodies and soundfont never seen in training): median SDR" in out
    assert "clicking players of held-out duets" in out and "in distribution (validation videos)" in out
    table = [line for line in out.splitlines()
             if line.startswith(("in distribution (validation)", "held-out scenes, solo pairs",
                                 "held-out duets, click a player", "ideal binary mask"))]
    assert len(table) == 4
    # ...and, under it, the gain of each pair of instruments mixed, which the medians can hide
    assert "worst first (sources of held-out solo pairs):" in out and "worst first (clicked players of held-out duets):" in out
    assert "median gain of each player's click" in out
    assert "by the instruments mixed" in (work / "report" / "index.html").read_text()
    wavs = sorted((work / "separated").glob("*.wav"))
    assert len(wavs) == 3  # the two clicked players and the residual
    for wav in wavs:
        rate, samples = wav_info(wav)  # stems come back at the video's own rate
        assert rate >= 11025 and samples > rate * 7
    assert sum(abs(read_wav(w)).max() > 0 for w in wavs) >= 2
    assert (work / "separated" / "heatmap.mp4").stat().st_size > 0
    # 30 steps never start to separate: the user is told how to continue the run
    assert "has not yet started to separate" in out and f"--steps {DEFAULT_STEPS}" in out
    # a second run reuses every stage's output and only repeats scoring and separation
    again = avsep(*args)
    assert again.returncode == 0 and "already trained" in again.stdout


def scores(validation_db: float, held_out_db: float) -> dict:
    """A report's solo-pair parts as generalization_report writes them (mixtures at 0.1 dB)."""
    def summary(model_db: float) -> dict:
        return {"model": {"SDR": {"median": model_db}}, "mixture": {"SDR": {"median": 0.1}}}
    return {"in_distribution": summary(validation_db), "held_out": summary(held_out_db)}


def test_the_quickstart_hint_names_what_to_do_with_a_run_that_has_not_taken_off_or_transfers_weakly():
    from avsep.cli.quickstart import DEFAULT_STEPS, take_off_hint

    work = Path("qs")
    not_started = take_off_hint(scores(2.0, 1.0), 3350, 16, work)
    assert "+1.90 dB on validation" in not_started and "--steps 4950" in not_started
    assert f"--steps {DEFAULT_STEPS}" in take_off_hint(scores(0.5, 0.2), 30, 16, work)
    # separating its own kind of videos, weak on held-out scenes: twice the training videos, in a
    # folder of their own (the quickstart's own would give back its data), and more steps
    weak = take_off_hint(scores(7.6, 4.6), DEFAULT_STEPS, 24, work)
    assert "+7.50 dB on validation" in weak and "+4.50 dB on held-out" in weak and "its 24 training videos" in weak
    assert f"--workdir qs_48 --per-label 48 --steps {DEFAULT_STEPS + 1000}" in weak
    # ...unless it stopped before the quickstart's steps: then it continues
    short = take_off_hint(scores(7.6, 4.6), 2000, 24, work)
    assert f"--steps {DEFAULT_STEPS}" in short and "--per-label" not in short
    # learning slowly rather than memorising (held-out about as good as validation): more steps
    slow = take_off_hint(scores(3.6, 3.7), DEFAULT_STEPS, 32, work)
    assert "+3.50 dB on validation" in slow and "+3.60 dB on held-out" in slow and "has learnt little" in slow
    assert f"--steps {DEFAULT_STEPS + 1000} to continue" in slow and "--per-label" not in slow
    # the rule's edge: held-out 2 dB under validation is still slow learning, more is memorising
    assert f"--steps {DEFAULT_STEPS + 1000}" in take_off_hint(scores(7.6, 5.7), DEFAULT_STEPS, 32, work)
    assert "--per-label 64" in take_off_hint(scores(7.6, 5.5), DEFAULT_STEPS, 32, work)
    # once continued by 1,000 steps, no further steps are promised
    later = take_off_hint(scores(4.2, 5.3), DEFAULT_STEPS + 1000, 32, work)
    assert "known limit" in later and "--steps" not in later
    assert take_off_hint(scores(9.0, 8.5), DEFAULT_STEPS, 16, work) is None


def test_quickstart_rejects_bad_arguments(tmp_path):
    result = avsep("quickstart", "--workdir", str(tmp_path), "--per-label", "2")
    assert result.returncode == 2 and "--per-label" in result.stderr and "Traceback" not in result.stderr
    result = avsep("quickstart", "--workdir", str(tmp_path), "--workers", "-1")
    assert result.returncode == 2 and "--workers -1" in result.stderr and "Traceback" not in result.stderr
    result = avsep("quickstart", "--workdir", str(tmp_path), "--heldout-backgrounds", str(tmp_path))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"--heldout-backgrounds {tmp_path}: no pictures" in result.stderr
    assert not any(tmp_path.iterdir()), "nothing is generated before the arguments are checked"


def test_quickstart_refuses_a_workdir_trained_on_another_number_of_videos(tmp_path):
    for label in ("violin", "drum"):
        (tmp_path / "videos" / label).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "videos" / label / f"{label}_{i:04d}.mp4").write_bytes(b"")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"")
    before = sorted(tmp_path.rglob("*"))
    result = avsep("quickstart", "--workdir", str(tmp_path), "--per-label", "6")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "trained on 3 videos an instrument; for --per-label 6 use a new --workdir" in result.stderr
    assert sorted(tmp_path.rglob("*")) == before, "nothing is generated"


def test_quickstart_says_when_its_run_keeps_an_older_configuration(tmp_path, caplog):
    import torch

    from avsep.cli.quickstart import train_to
    from avsep.config import Config
    from avsep.models.checkpoint import FORMAT

    older = Config.preset("small").replace(pixel_sparsity=0.0, sparsity_start=0)   # before the preset's stage
    torch.save({"format": FORMAT, "config": older.to_dict(), "train_state": {"step": 5}, "model": {}},
               tmp_path / "last.pt")
    with caplog.at_level("WARNING", logger="avsep"):
        assert train_to(Config.preset("small"), tmp_path, tmp_path, 5, None)[1] == 5   # already there: no training
    assert ("trained with pixel_sparsity=0.0 (asked 1.0), sparsity_start=0 (asked 2850); it goes on with its own "
            "configuration") in caplog.text


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--checkpoint", "ck.pt", "--index", "x.csv", "--batch-size", "0"], "--batch-size 0: expected at least 1"),
    (["evaluate", "--checkpoint", "ck.pt", "--index", "x.csv", "--workers=-1"], "--workers -1: expected at least 0"),
    (["evaluate", "--checkpoint", "ck.pt", "--index", "x.csv", "--report-items=-1"], "--report-items -1: expected at least 0"),
    (["evaluate", "--checkpoint", "ck.pt", "--index", "x.csv", "--report", "FILE"], "--report FILE: exists and is not a folder"),
    (["train", "--data", "d", "--out", "o", "--max-steps", "0"], "--max-steps 0: expected at least 1"),
    (["train", "--data", "d", "--out", "o", "--max-minutes=-1"], "--max-minutes -1: expected a positive number"),
    (["train", "--data", "d", "--out", "o", "--save-minutes", "0"], "--save-minutes 0: expected a positive number"),
    (["train", "--data", "d", "--out", "o", "--workers=-1"], "--workers -1: expected at least 0"),
    (["train", "--data", "d", "--out", "FILE"], "--out FILE: exists and is not a folder"),
    (["evaluate-localization", "--checkpoint", "ck.pt", "--duets", "d", "--limit", "0"], "--limit 0: expected at least 1"),
])
def test_bad_numbers_and_paths_are_one_line_before_any_work(tmp_path, monkeypatch, capsys, argv, message):
    from avsep.cli import main

    monkeypatch.chdir(tmp_path)  # the relative --out o would be made here
    existing = tmp_path / "notes.txt"
    existing.write_text("not a folder")
    argv = [str(existing) if a == "FILE" else a for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    errors = re.findall(r"avsep: error: [^\r\n]*", err)
    assert errors == [f"avsep: error: {message.replace('FILE', str(existing))}"] and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_an_error_of_the_file_system_is_one_line_naming_the_path(tmp_path, capsys):
    # Not checked beforehand: the first scene's folder cannot be made inside a file.
    from avsep.cli import main

    existing = tmp_path / "notes.txt"
    existing.write_text("not a folder")
    assert main(["generate", "duets", str(existing), "--count", "1", "--backend", "numpy"]) == 2
    err = capsys.readouterr().err
    assert re.findall(r"avsep: error: [^\r\n]*", err) == [f"avsep: error: {existing}/duet_000: Not a directory"]
    assert "Traceback" not in err
    # The progress bar that was open ends first: the error starts its line and is the last one.
    assert err.endswith(f"\navsep: error: {existing}/duet_000: Not a directory\n")
