"""End to end on generated videos: training lowers the loss, and the model separates videos it has
never seen (held-out backgrounds, melodies and soundfont) better than the mixture.

The model is the session's ``trained_separator_checkpoint`` (tests/conftest.py: violin and drum,
trained once per machine and cached), shared with the app's browser test.
"""
import csv
import subprocess

import numpy as np
import pytest

from avsep.data.decode import load_audio, read_wav, wav_info
from avsep.evaluation.evaluate import evaluate
from avsep.evaluation.metrics import bss_eval_sources
from tests.conftest import PYTHON, RECIPE

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def held_out(tmp_path_factory):
    """Held-out solo videos of the recipe's instruments, preprocessed, and a new duet.

    The duet is a new scene drawn from the training pools: the CLI test checks that separating by
    boxes works end to end; how far clicks transfer to held-out scenes is measured by
    benchmarks/bench_generalization.py (docs/training.md).
    """
    return make_held_out(tmp_path_factory.mktemp("held_out"))


def make_held_out(root, per_label: int = 3):
    """The `held_out` fixture's data under ``root`` (also used by benchmarks/probe_test_recipe.py,
    which can ask for more than the test's 3 videos a label)."""
    from avsep.data.preprocess import preprocess
    from avsep.synth import load_duets, make_duets, make_solo_collection

    make_solo_collection(root / "videos", labels=RECIPE["labels"], videos_per_label=per_label, seed=11, workers=2,
                         progress=False, pool="test")
    preprocess(root / "videos", root / "data", workers=2, val_frac=0.0, test_frac=0.0, progress=False)
    make_duets(root / "duets", pairs=[tuple(RECIPE["labels"])], count=1, seed=7, pool="train")
    return {"index": root / "data" / "train.csv", "duet": load_duets(root / "duets")[0]}


def test_training_lowers_the_loss(trained_separator_checkpoint):
    log = trained_separator_checkpoint.parent / "log.csv"
    if not log.is_file():
        pytest.skip("AVSEP_TEST_CHECKPOINT has no log.csv beside it")
    with open(log, newline="") as f:
        losses = [float(row["loss"]) for row in csv.DictReader(f)]
    assert len(losses) >= 100
    assert np.mean(losses[-50:]) < 0.8 * np.mean(losses[:50])


def test_trained_model_beats_the_mixture_on_held_out_videos(trained_separator_checkpoint, held_out):
    summary = evaluate(trained_separator_checkpoint, held_out["index"], pairs=9, progress=False)
    model, mixture = summary["model"]["SDR"]["median"], summary["mixture"]["SDR"]["median"]
    assert model > mixture + 1.0, f"model {model:.2f} dB vs mixture {mixture:.2f} dB"
    assert summary["model"]["SIR"]["median"] > summary["mixture"]["SIR"]["median"] + 1.0


def test_separate_cli_splits_a_new_duet_by_boxes(trained_separator_checkpoint, held_out, tmp_path):
    model_sdr, mixture_sdr = cli_box_sdrs(trained_separator_checkpoint, held_out["duet"], tmp_path)
    gains, report = model_sdr - mixture_sdr, f"box SDRs {np.round(model_sdr, 2)} vs mixture {np.round(mixture_sdr, 2)} dB"
    # The CLI must deliver separated sound: at least one box's stem clearly beats the mixture.
    assert gains.max() > 3.0, report
    if gains.min() < 1.0:
        # Known defect of the small test model, not of the CLI: on this duet the box on one of the
        # players does not separate it yet (issue 7, docs/training.md "The test suite's model").
        pytest.xfail(f"a box does not beat the mixture by 1 dB: {report}")


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
