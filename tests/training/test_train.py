"""Training runs: decisions by steps, bit-exact resume after kill -9, best.pt that cannot lie."""
import csv
import signal
import subprocess
import time

import pytest
import torch

from avsep.config import COOLDOWN_FLOOR, Config, RunSettings
from avsep.errors import AvsepError
from avsep.models.checkpoint import load_checkpoint
from avsep.training.trainer import Trainer, lr_factor, make_optimizer
from tests.conftest import PYTHON

TINY = ["--set", "channels=8", "--set", "resnet_width=8", "--set", "unet_channels=8", "--set", "batch_size=4",
        "--set", "epoch_size=16", "--set", "val_pairs=4", "--set", "val_every=4", "--workers", "0"]
CFG = Config.preset("small").replace(channels=8, resnet_width=8, unet_channels=8, batch_size=4, epoch_size=16,
                                     epochs=3, val_pairs=4, val_every=4, lr_milestones=(2,), compose_prob=0.5,
                                     pixel_loss=1.0, color_jitter=0.2, crop_scale=0.7, pixel_sparsity=0.0,
                                     sparsity_start=0)


def train_cmd(data, out, *extra):
    return [PYTHON, "-m", "avsep", "train", "--data", str(data), "--out", str(out), *TINY, *extra]


def log_steps(run):
    with open(run / "log.csv", newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def weights(path):
    return load_checkpoint(path)["model"]


def same_weights(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def fit(data, run, **settings):
    trainer = Trainer(CFG, data / "train.csv", data / "val.csv", run, RunSettings(workers=0, progress=False, **settings))
    return trainer.fit()


def test_stopped_and_resumed_run_matches_an_uninterrupted_one_bit_for_bit(tiny_dataset, tmp_path):
    full = fit(tiny_dataset, tmp_path / "full")
    assert full.step == CFG.total_steps == 12
    fit(tiny_dataset, tmp_path / "split", max_steps=6)  # stops mid-epoch, between validations
    resumed = Trainer(CFG, tiny_dataset / "train.csv", tiny_dataset / "val.csv", tmp_path / "split",
                      RunSettings(workers=0, progress=False), resume_state=load_checkpoint(tmp_path / "split/last.pt"))
    assert resumed.fit().step == 12
    assert same_weights(weights(tmp_path / "full/last.pt"), weights(tmp_path / "split/last.pt"))
    assert log_steps(tmp_path / "split") == list(range(1, 13))


def test_decisions_are_taken_by_steps(tiny_dataset, tmp_path):
    fit(tiny_dataset, tmp_path / "run")
    with open(tmp_path / "run" / "log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows if r["val_sdr"]] == [4, 8, 12]
    assert [float(r["lr"]) for r in rows] == [1.0] * 8 + [0.1] * 4, "x0.1 from epoch 2 (4 steps per epoch)"
    state = load_checkpoint(tmp_path / "run" / "best.pt")
    assert state["train_state"]["step"] == state["train_state"]["best_step"] in (4, 8, 12)
    assert state["train_manifest"]["count"] == 9


def test_lr_schedule_of_the_presets():
    sop = Config.preset("sop")
    assert [lr_factor(sop, e, 0) for e in (0, 39, 40, 59, 60, 99)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert lr_factor(Config.preset("small"), 500, 31_000) == 1.0


def test_cooldown_falls_linearly_to_its_floor_and_stays_there():
    cfg = Config.preset("small").with_overrides(["lr_cooldown=100,300"])
    assert cfg.lr_cooldown == (100, 300)
    factors = [lr_factor(cfg, 0, step) for step in (0, 100, 200, 300, 5000)]
    assert factors == pytest.approx([1.0, 1.0, (1 + COOLDOWN_FLOOR) / 2, COOLDOWN_FLOOR, COOLDOWN_FLOOR])
    sop = Config.preset("sop").replace(lr_cooldown=(0, 10))  # multiplies the milestones' factor
    assert lr_factor(sop, 40, 10) == pytest.approx(0.1 * COOLDOWN_FLOOR)


@pytest.mark.parametrize("value", ["300,100", "100", "5,5"])
def test_a_cooldown_must_be_two_increasing_steps(value):
    with pytest.raises(AvsepError, match="lr_cooldown must be"):
        Config.preset("small").with_overrides([f"lr_cooldown={value}"])


def test_a_silent_model_never_becomes_best(tiny_dataset, tmp_path):
    trainer = Trainer(CFG, tiny_dataset / "train.csv", tiny_dataset / "val.csv", tmp_path / "run",
                      RunSettings(workers=0, progress=False))
    with torch.no_grad():
        trainer.separating_model.synthesizer.scale.zero_()  # the model that validation scores
        trainer.separating_model.synthesizer.bias.fill_(-200.0)
    assert trainer.checkpoint() == -50.0
    assert not (tmp_path / "run" / "best.pt").exists() and trainer.state.best_step == -1


def test_best_pt_behind_last_pt_is_repaired_on_resume(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    fit(tiny_dataset, run, max_steps=4)
    (run / "best.pt").replace(run / "old.pt")
    fit_state = load_checkpoint(run / "last.pt")
    assert fit_state["train_state"]["best_step"] == 4
    # A kill after last.pt, before best.pt: best.pt is missing or older than last.pt's best step.
    Trainer(CFG, tiny_dataset / "train.csv", tiny_dataset / "val.csv", run, RunSettings(workers=0, progress=False),
            resume_state=fit_state)
    assert load_checkpoint(run / "best.pt")["train_state"]["step"] == 4


def test_resume_removes_checkpoints_a_killed_run_was_writing(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    fit(tiny_dataset, run, max_steps=4)
    leftover = run / ".last.pt.k1ll3d.pt.part"  # what a kill -9 in the middle of a save leaves
    leftover.write_bytes(b"half a checkpoint")
    Trainer(CFG, tiny_dataset / "train.csv", tiny_dataset / "val.csv", run, RunSettings(workers=0, progress=False),
            resume_state=load_checkpoint(run / "last.pt"))
    assert not leftover.exists() and (run / "last.pt").is_file()


def test_a_kill_between_log_row_and_checkpoint_leaves_a_whole_log_after_resume(tiny_dataset, tmp_path, monkeypatch):
    import avsep.training.trainer as trainer_module

    run, real_save = tmp_path / "run", trainer_module.save_checkpoint

    def dying_save(path, model, cfg, **extra):
        if extra["train_state"]["step"] == 3:
            raise SystemExit("killed while saving step 3")
        return real_save(path, model, cfg, **extra)

    monkeypatch.setattr(trainer_module, "save_checkpoint", dying_save)
    with pytest.raises(SystemExit):
        fit(tiny_dataset, run, max_steps=6, save_minutes=1e-6)
    assert log_steps(run) == [1, 2, 3], "the row of step 3 is written before its checkpoint"
    monkeypatch.setattr(trainer_module, "save_checkpoint", real_save)
    state = load_checkpoint(run / "last.pt")
    assert state["train_state"]["step"] == 2
    Trainer(CFG, tiny_dataset / "train.csv", tiny_dataset / "val.csv", run,
            RunSettings(workers=0, progress=False, max_steps=6), resume_state=state).fit()
    assert log_steps(run) == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_resume_after_kill_9_reaches_the_same_weights(tiny_dataset, tmp_path):
    steps = ["--max-steps", "24", "--save-minutes", "0.001"]
    straight = subprocess.run(train_cmd(tiny_dataset, tmp_path / "straight", *steps), capture_output=True,
                              text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr
    run = tmp_path / "run"
    proc = subprocess.Popen(train_cmd(tiny_dataset, run, *steps), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (run / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)  # kill at an arbitrary moment after the first checkpoint, likely mid-step or mid-save
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = load_checkpoint(run / "last.pt")["train_state"]["step"]
    assert 1 <= killed_at < 24
    result = subprocess.run(train_cmd(tiny_dataset, run, "--resume", *steps), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    assert same_weights(weights(tmp_path / "straight/last.pt"), weights(run / "last.pt"))
    assert log_steps(run) == list(range(1, 25)), "the log continues where the checkpoint was, without gaps"
    assert not list(run.glob("*.part")) and not list(run.glob(".*.part"))
    assert (run / "best.pt").exists() and (run / "config.json").exists() and (run / "curves.png").exists()


def test_resume_names_conflicting_flags(tiny_dataset, tmp_path):
    run = tmp_path / "run"
    first = subprocess.run(train_cmd(tiny_dataset, run, "--max-steps", "2"), capture_output=True, text=True,
                           timeout=300)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(train_cmd(tiny_dataset, run, "--resume", "--max-steps", "3", "--num-mix", "3",
                                     "--set", "lr_sound=0.5", "--set", "pixel_sparsity=0.5", "--set", "lr_cooldown=2,3"),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "ignoring lr_sound=0.5, num_mix=3" in again.stderr and "keeps lr_sound=0.001, num_mix=2" in again.stderr
    # The sparsity push may be switched on for a later stage of a run, and a cooldown added to its
    # end: taken, and said.
    assert "continuing with lr_cooldown=(2, 3) (was ()), pixel_sparsity=0.5 (was 1.0)" in again.stderr
    saved = load_checkpoint(run / "last.pt")
    assert saved["config"]["num_mix"] == 2 and saved["config"]["pixel_sparsity"] == 0.5
    assert saved["config"]["lr_cooldown"] == [2, 3]
    assert saved["train_state"]["step"] == 3


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
    notes = tmp_path / "notes.txt"
    notes.write_text("not an index\n")
    argv = [PYTHON, "-m", "avsep", "train", "--train-index", str(notes), "--out", str(tmp_path / "run4"), *TINY]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and f"{notes}, line 1: expected AUDIO_PATH" in result.stderr
    assert not (tmp_path / "run4").exists()   # no run folder is left for an index that cannot be read


@pytest.mark.parametrize("name, kind", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD)])
def test_the_configured_optimizer_keeps_each_networks_learning_rate_and_the_weight_decay(name, kind):
    from avsep.models.sop import SoundOfPixels

    cfg = Config.preset("small").replace(optimizer=name, weight_decay=0.5, lr_frame=2e-4)
    optimizer = make_optimizer(SoundOfPixels(cfg), cfg)
    assert type(optimizer) is kind
    assert {g["name"]: g["lr"] for g in optimizer.param_groups} == {"frame": 2e-4, "sound": 1e-3, "synth": 1e-3}
    assert all(g["weight_decay"] == 0.5 for g in optimizer.param_groups)


def _record_sparsity(monkeypatch, val_sdrs):
    """Validation SDRs from ``val_sdrs`` in turn; returns the list of the sparsity weights that
    reach the per-pixel loss, one per training step."""
    import avsep.dsp.masks as masks
    import avsep.training.trainer as trainer_module

    sdrs, used = iter(val_sdrs), []
    real_pixel_loss = masks.pixel_loss

    def recording_pixel_loss(*args, sparsity=None, **kwargs):
        used.append(sparsity)
        return real_pixel_loss(*args, sparsity=sparsity, **kwargs)

    def fake_validation(self):
        return {"model": {"SDR": {"median": next(sdrs)}}, "silent_estimates": {"model": 0}, "sources_scored": 8}

    monkeypatch.setattr(trainer_module, "pixel_loss", recording_pixel_loss)
    monkeypatch.setattr(Trainer, "validate", fake_validation)
    return used


GATED = CFG.replace(pixel_sparsity=1.0, sparsity_gate_db=3.0)


def _gated_trainer(data, run, resume=None, **settings):
    return Trainer(GATED, data / "train.csv", data / "val.csv", run, RunSettings(workers=0, progress=False, **settings),
                   resume_state=resume)


def test_sparsity_waits_for_its_validation_gate_then_stays_on(tiny_dataset, tmp_path, monkeypatch):
    used = _record_sparsity(monkeypatch, [1.0, 4.0, 2.0])   # validations at steps 4, 8 and 12
    _gated_trainer(tiny_dataset, tmp_path / "run").fit()
    assert used == [0.0] * 8 + [1.0] * 4, "4 dB at step 8 opens the gate for the steps after it, 2 dB does not close it"
    assert load_checkpoint(tmp_path / "run" / "last.pt")["train_state"]["sparsity_from"] == 9


def test_a_run_stopped_between_validations_opens_the_gate_where_an_uninterrupted_one_does(tiny_dataset, tmp_path,
                                                                                        monkeypatch):
    # Validations at 4 and at the stop (6, which must not count), then at 8 and 12 after the resume.
    used = _record_sparsity(monkeypatch, [1.0, 9.0, 4.0, 2.0])
    run = tmp_path / "run"
    _gated_trainer(tiny_dataset, run, max_steps=6).fit()
    assert load_checkpoint(run / "last.pt")["train_state"]["sparsity_from"] == -1
    _gated_trainer(tiny_dataset, run, resume=load_checkpoint(run / "last.pt")).fit()
    assert used == [0.0] * 8 + [1.0] * 4
    assert load_checkpoint(run / "last.pt")["train_state"]["sparsity_from"] == 9


def test_sparsity_starts_after_sparsity_start_steps_and_resumes_so(tiny_dataset, tmp_path, monkeypatch):
    used = _record_sparsity(monkeypatch, [1.0] * 4)
    late = CFG.replace(pixel_sparsity=1.0, sparsity_start=6)
    run = tmp_path / "run"
    Trainer(late, tiny_dataset / "train.csv", tiny_dataset / "val.csv", run,
            RunSettings(workers=0, progress=False, max_steps=5)).fit()
    Trainer(late, tiny_dataset / "train.csv", tiny_dataset / "val.csv", run, RunSettings(workers=0, progress=False),
            resume_state=load_checkpoint(run / "last.pt")).fit()
    assert used == [0.0] * 6 + [1.0] * 6, "steps 7 to 12 are trained with it, across a stop at step 5"


def test_best_pt_comes_from_the_sparsity_stage_once_it_started(tiny_dataset, tmp_path, monkeypatch):
    _record_sparsity(monkeypatch, [5.0, 1.0, 2.0])   # validations at steps 4, 8 and 12
    late = CFG.replace(pixel_sparsity=1.0, sparsity_start=6)
    run = tmp_path / "run"
    Trainer(late, tiny_dataset / "train.csv", tiny_dataset / "val.csv", run,
            RunSettings(workers=0, progress=False, max_steps=8)).fit()
    # 1 dB at step 8 is worse than step 4's 5 dB, but step 4 is from before the stage (steps 7 on).
    assert load_checkpoint(run / "best.pt")["train_state"]["best_step"] == 8
    Trainer(late, tiny_dataset / "train.csv", tiny_dataset / "val.csv", run, RunSettings(workers=0, progress=False),
            resume_state=load_checkpoint(run / "last.pt")).fit()
    state = load_checkpoint(run / "best.pt")["train_state"]
    assert state["best_step"] == 12 and state["best_sdr"] == 2.0


def test_sparsity_weight_with_and_without_a_gate_and_its_configuration():
    from avsep.training.trainer import TrainState, sparsity_weight

    late = CFG.replace(pixel_sparsity=0.5, sparsity_start=2850)
    assert sparsity_weight(late, TrainState(step=2849)) == 0.0 and sparsity_weight(late, TrainState(step=2850)) == 0.5
    gated_late = late.replace(sparsity_gate_db=6.0)
    assert sparsity_weight(gated_late, TrainState(step=3000)) == 0.0, "a start does not open a gate"
    assert sparsity_weight(gated_late, TrainState(step=2000, sparsity_from=1751)) == 0.0, "nor a gate a start"
    assert sparsity_weight(gated_late, TrainState(step=2850, sparsity_from=1751)) == 0.5
    from avsep.training.trainer import sparsity_stage_start
    assert sparsity_stage_start(late, TrainState(step=2850)) is None
    assert sparsity_stage_start(late, TrainState(step=2851)) == 2851
    assert sparsity_stage_start(gated_late, TrainState(step=3000)) is None
    assert sparsity_stage_start(gated_late, TrainState(step=3000, sparsity_from=2901)) == 2901
    assert sparsity_stage_start(CFG.replace(pixel_sparsity=0.5), TrainState(step=3000)) is None, "not delayed"
    with pytest.raises(AvsepError, match="sparsity_start must be >= 0"):
        CFG.replace(pixel_sparsity=1.0, sparsity_start=-1)
    # Without the push a start does nothing, so the preset's stage is turned off by one key.
    off = Config.preset("small").replace(pixel_sparsity=0.0)
    assert off.sparsity_start == 2850 and sparsity_weight(off, TrainState(step=3000)) == 0.0
    assert sparsity_stage_start(off, TrainState(step=3000)) is None
    assert Config.preset("small").with_overrides(["pixel_loss=0"]).pixel_loss == 0.0

    assert sparsity_weight(CFG.replace(pixel_sparsity=0.5, sparsity_gate_db=0.0), TrainState()) == 0.5
    assert sparsity_weight(CFG.replace(pixel_sparsity=0.5, sparsity_gate_db=6.0), TrainState()) == 0.0
    assert sparsity_weight(CFG.replace(pixel_sparsity=0.5, sparsity_gate_db=6.0), TrainState(sparsity_from=251)) == 0.5
    with pytest.raises(AvsepError, match="sparsity_gate_db must be >= 0"):
        CFG.replace(pixel_sparsity=1.0, sparsity_gate_db=-1.0)
    with pytest.raises(AvsepError, match="sparsity_gate_db gates pixel_sparsity"):
        CFG.replace(pixel_sparsity=0.0, sparsity_gate_db=5.0)


def test_the_progress_bar_closes_when_a_step_fails(tiny_dataset, tmp_path, monkeypatch):
    # An open bar is redrawn after the error that stopped it: the error would share its line.
    from tqdm import tqdm

    import avsep.training.trainer as trainer_module

    def failing_step(*args, **kwargs):
        raise RuntimeError("out of memory")

    trainer = Trainer(CFG, tiny_dataset / "train.csv", tiny_dataset / "val.csv", tmp_path / "run",
                      RunSettings(workers=0, progress=True))
    monkeypatch.setattr(trainer_module, "optimizer_step", failing_step)
    with pytest.raises(RuntimeError, match="out of memory") as error:
        trainer.fit()
    # While the error is handled its traceback keeps the bar alive: it must be closed already.
    assert error.tb is not None and not list(tqdm._instances)
