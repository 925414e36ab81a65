"""End to end on generated videos, with the quickstart's model: training lowers the loss, and the
model separates and localizes scenes it has never seen (held-out backgrounds, melodies, soundfont
and players) better than the mixture and than chance.

The model is the session's ``trained_separator_checkpoint`` (tests/conftest.py: the quickstart's
run, trained once per machine and cached), shared with the app's browser test. How far these
figures reach issue 7's targets is measured on 48 duets by benchmarks/bench_generalization.py.
"""
import csv
import subprocess

import numpy as np
import pytest

from avsep.data.decode import load_audio, read_frames, read_wav, wav_info
from avsep.evaluation.ensembles import score_clicks, score_pointing
from avsep.evaluation.evaluate import evaluate
from avsep.evaluation.metrics import bss_eval_sources
from avsep.inference import Separator, VideoClip
from avsep.synth.instruments import DEFAULT_LABELS
from tests.conftest import PYTHON

pytestmark = pytest.mark.slow

HELD_OUT_DUETS = 12     # scenes of the held-out pools to click on and localize in
QUIETER_DB = 18.0       # issue 9: the same results with the duet's audio this much quieter


@pytest.fixture(scope="session")
def held_out(tmp_path_factory):
    """Held-out solo videos of the quickstart's instruments, preprocessed; a new violin and drum
    duet drawn from the training pools (for the CLI's boxes); and duets of the held-out pools."""
    return make_held_out(tmp_path_factory.mktemp("held_out"))


def make_held_out(root, per_label: int = 3):
    from avsep.data.preprocess import preprocess
    from avsep.synth import load_duets, make_duets, make_solo_collection

    make_solo_collection(root / "videos", labels=DEFAULT_LABELS, videos_per_label=per_label, seed=11, workers=2,
                         progress=False, pool="test")
    preprocess(root / "videos", root / "data", workers=2, val_frac=0.0, test_frac=0.0, progress=False)
    make_duets(root / "duets", pairs=[("violin", "drum")], count=1, seed=7, pool="train")
    make_duets(root / "heldout_duets", count=HELD_OUT_DUETS, seed=23, pool="test")
    return {"index": root / "data" / "train.csv", "duet": load_duets(root / "duets")[0],
            "duets": load_duets(root / "heldout_duets")}


@pytest.fixture(scope="session")
def separator(trained_separator_checkpoint):
    return Separator.from_checkpoint(trained_separator_checkpoint, device="cpu")


@pytest.fixture(scope="session")
def duet_analyses(separator, held_out):
    """One analysis per held-out duet, shared by the click and pointing tests: [(entry, analysis)]."""
    return [(entry, separator.analyze(entry["video"], progress=False)) for entry in held_out["duets"]]


def test_training_lowers_the_loss(trained_separator_checkpoint):
    log = trained_separator_checkpoint.parent / "log.csv"
    if not log.is_file():
        pytest.skip("AVSEP_TEST_CHECKPOINT has no log.csv beside it")
    with open(log, newline="") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert len(losses) >= 100
    assert np.mean(losses[-50:]) < 0.8 * np.mean(losses[:50])


def test_trained_model_beats_the_mixture_on_held_out_videos(trained_separator_checkpoint, held_out):
    summary = evaluate(trained_separator_checkpoint, held_out["index"], pairs=30, progress=False)
    model, mixture = summary["model"]["SDR"]["median"], summary["mixture"]["SDR"]["median"]
    assert model > mixture + 3.0, f"model {model:.2f} dB vs mixture {mixture:.2f} dB"
    assert summary["model"]["SIR"]["median"] > summary["mixture"]["SIR"]["median"] + 3.0


def test_clicks_on_held_out_duets_beat_the_mixture(duet_analyses):
    sdr, mixture_sdr, best_gain = [], [], []
    for entry, analysis in duet_analyses:
        clicks = score_clicks(analysis, entry)
        sdr += clicks["SDR"]
        mixture_sdr += clicks["mixture_SDR"]
        best_gain.append(max(np.array(clicks["SDR"]) - np.array(clicks["mixture_SDR"])))
    gains = np.array(sdr) - np.array(mixture_sdr)
    report = (f"median click {np.median(sdr):.2f} dB, mixture {np.median(mixture_sdr):.2f} dB; "
              f"gains {np.round(sorted(gains), 1)}")
    # Issue 7's click measure: the median click's SDR against the mixture's.
    assert np.median(sdr) > np.median(mixture_sdr) + 2.0, report
    # A click separates some player of at least half the scenes: the quickstart's model does so in
    # 94% of the bench's 48 held-out duets and in 11 of these 12 (90% on the other data draw); the
    # bar is a first model's, not issue 7's targets (docs/training.md, "The test suite's model").
    assert np.mean(np.array(best_gain) > 3.0) >= 1 / 2, report


def test_energy_maps_point_at_the_players_far_above_chance(duet_analyses):
    hits, chance = [], []
    for entry, analysis in duet_analyses:
        pointing = score_pointing(analysis, entry)
        hits += pointing["hit"]
        chance += pointing["chance"]
    # A peak placed at random lands in a sounding player's box as often as the boxes cover the frame.
    report = f"pointing {np.mean(hits):.0%} of {len(hits)} windows, chance {np.mean(chance):.0%}"
    assert len(hits) >= 3 * len(duet_analyses), report
    assert np.mean(hits) > np.mean(chance) + 0.2, report


def test_an_18_db_quieter_duet_gives_the_same_stems_quieter(separator, held_out):
    entry = held_out["duets"][0]
    frames = list(read_frames(entry["video"], float(entry["fps"]), short_side=None))
    rate = int(entry["audio_rate"])
    audio = load_audio(entry["mixture"], rate)
    gain = 10 ** (-QUIETER_DB / 20)
    loud = separator.analyze(VideoClip(audio, rate, frames, float(entry["fps"])), progress=False)
    quiet = separator.analyze(VideoClip(audio * gain, rate, frames, float(entry["fps"])), progress=False)
    clicks_loud, clicks_quiet = score_clicks(loud, entry), score_clicks(quiet, entry)
    # The same results, not good ones: how well clicks separate is test_clicks_...'s, over 12
    # duets; on this one duet the quickstart's model gains on one player and loses on the other.
    np.testing.assert_allclose(clicks_quiet["SDR"], clicks_loud["SDR"], atol=0.05)
    np.testing.assert_allclose(clicks_quiet["mixture_SDR"], clicks_loud["mixture_SDR"], atol=0.05)
    for point in clicks_loud["point"]:
        np.testing.assert_allclose(quiet.separate(point=point), gain * loud.separate(point=point), atol=1e-4 * gain)
    assert score_pointing(quiet, entry)["hit"] == score_pointing(loud, entry)["hit"]


def test_separate_cli_splits_a_new_duet_by_boxes(trained_separator_checkpoint, held_out, tmp_path):
    model_sdr, mixture_sdr = cli_box_sdrs(trained_separator_checkpoint, held_out["duet"], tmp_path)
    report = f"box SDRs {np.round(model_sdr, 2)} vs mixture {np.round(mixture_sdr, 2)} dB"
    assert (model_sdr - mixture_sdr).min() > 3.0, report


def cli_box_sdrs(checkpoint, duet: dict, out):
    """`avsep separate --box` on each player of ``duet`` into ``out``: (model, mixture) SDRs, (2,) each."""
    boxes = [",".join(f"{v:g}" for v in source["box"]) for source in duet["sources"]]
    result = subprocess.run([PYTHON, "-m", "avsep", "separate", duet["video"], "--checkpoint",
                             str(checkpoint), "--box", boxes[0], "--box", boxes[1],
                             "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    # the stems come back at the video's own sample rate: score everything at that rate
    rate, _ = wav_info(out / "residual.wav")
    estimates = np.stack([read_wav(next(out.glob(f"box{i}_*.wav"))) for i in (1, 2)])
    assert estimates.shape == (2, len(read_wav(out / "residual.wav")))
    mixture = load_audio(duet["mixture"], rate)
    stems = [load_audio(s["stem"], rate) for s in duet["sources"]]
    n = min(len(mixture), estimates.shape[1], *(len(s) for s in stems))
    reference = np.stack([s[:n] for s in stems]).astype(np.float64)
    model_sdr = bss_eval_sources(reference, estimates[:, :n].astype(np.float64))[0]
    mixture_sdr = bss_eval_sources(reference, np.stack([mixture[:n]] * 2).astype(np.float64))[0]
    return model_sdr, mixture_sdr


def test_separate_cli_bad_input_is_one_line(trained_separator_checkpoint, held_out, tmp_path):
    checkpoint = str(trained_separator_checkpoint)
    video = held_out["duet"]["video"]
    cases = [
        (["--point", "1,2,3"], "--point '1,2,3': expected 2 comma-separated numbers"),
        (["--point", "9999,1"], "outside the 512x256 frame"),
        ([], "give at least one --point"),
        (["--point", "10,10", "--radius", "-1"], "--radius -1: must be 0 or more cells"),
    ]
    for extra, message in cases:
        result = subprocess.run([PYTHON, "-m", "avsep", "separate", video, "--checkpoint", checkpoint,
                                 "--out", str(tmp_path), *extra], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
