"""How the test suite's model (tests/conftest.py RECIPE) does on held-out videos at every step.

Trains the recipe as the fixture does (same videos, preprocessing and Trainer), keeps the
checkpoint of every validation, and scores each one as tests/training/test_learning.py does:
held-out solo pairs (the held-out pool, 3 videos a label, 9 pairs; ``--heldout-per-label`` for
more) and a box on each player of a new duet through `avsep separate --box`. Prints one line a
step, so that a reader can see whether the held-out result hangs on which checkpoint validation
picks, or on which videos are held out (docs/training.md, "The test suite's model"). A workdir
whose run has its last step's checkpoint is scored again without training.

Usage:  python benchmarks/probe_test_recipe.py --workdir DIR [--set KEY=VALUE ...]
                                               [--per-label N --val-frac F --test-frac F]
                                               [--heldout-per-label N]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avsep.config import Config, RunSettings  # noqa: E402
from avsep.data.preprocess import preprocess  # noqa: E402
from avsep.evaluation.evaluate import evaluate  # noqa: E402
from avsep.synth import make_solo_collection  # noqa: E402
from avsep.training.trainer import Trainer  # noqa: E402
from tests.conftest import RECIPE  # noqa: E402
from tests.training.test_learning import cli_box_sdrs, make_held_out  # noqa: E402


class KeepingTrainer(Trainer):
    """A Trainer that also keeps each checkpoint it writes as stepN.pt."""

    def _save(self, validated, summary):
        result = super()._save(validated, summary)
        shutil.copyfile(self.run_dir / "last.pt", self.run_dir / f"step{self.state.step}.pt")
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="configuration overrides, applied after RECIPE's own")
    parser.add_argument("--per-label", type=int, default=RECIPE["per_label"])
    parser.add_argument("--val-frac", type=float, default=0.1)
    parser.add_argument("--test-frac", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=RECIPE["max_steps"])
    parser.add_argument("--heldout-per-label", type=int, default=3,
                        help="held-out videos a label to score solo pairs on (the test's: 3)")
    args = parser.parse_args()

    work = args.workdir
    per_label = args.heldout_per_label
    if per_label < 1:
        parser.error(f"--heldout-per-label {per_label}: must be at least 1")
    held_out = make_held_out(work / ("held_out" if per_label == 3 else f"held_out_{per_label}"), per_label)
    pairs = per_label ** 2    # every pair of two videos of RECIPE's two labels
    if not (work / "data" / "train.csv").is_file():
        make_solo_collection(work / "videos", labels=RECIPE["labels"], videos_per_label=args.per_label,
                             seconds=RECIPE["seconds"], seed=RECIPE["seed"], workers=2, pool="train", progress=False)
        preprocess(work / "videos", work / "data", workers=2, val_frac=args.val_frac, test_frac=args.test_frac,
                   progress=False)
    cfg = Config.preset(RECIPE["preset"]).with_overrides(RECIPE["set"] + args.overrides)
    run = work / "run"
    if (run / f"step{args.steps}.pt").is_file():
        # Rescoring a finished run: only if it was trained with this configuration.
        changed = Config.load(run / "config.json").differences(cfg)
        if changed:
            sys.exit(f"{run}: trained with other values of {', '.join(changed)}; use another --workdir")
    else:
        KeepingTrainer(cfg, work / "data" / "train.csv", work / "data" / "val.csv", run,
                       RunSettings(max_steps=args.steps)).fit()
    for checkpoint in sorted(run.glob("step*.pt"), key=lambda f: int(f.stem[4:])) + [run / "best.pt"]:
        solo = evaluate(checkpoint, held_out["index"], pairs=pairs, progress=False)
        with tempfile.TemporaryDirectory() as out:
            boxes, mixture = cli_box_sdrs(checkpoint, held_out["duet"], Path(out))
        print(f"{checkpoint.name}: held-out solo SDR {solo['model']['SDR']['median']:.2f} "
              f"(SIR {solo['model']['SIR']['median']:.2f}, mixture {solo['mixture']['SDR']['median']:.2f}) dB; "
              f"duet boxes {np.round(boxes, 2)} (mixture {np.round(mixture, 2)}) dB", flush=True)


if __name__ == "__main__":
    main()
