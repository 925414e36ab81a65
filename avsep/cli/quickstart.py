"""Generate demo videos, preprocess, train, evaluate and separate a duet: avsep end to end.

Everything happens in ``--workdir`` (default ``./avsep_quickstart``): ``videos/`` (generated
solo videos), ``duets/``, ``data/`` (preprocessed), ``run/`` (checkpoints), ``report/`` (HTML)
and ``separated/`` (wavs). Every stage resumes: a second run reuses what the first one made,
and training continues from ``run/last.pt`` until ``--minutes`` of training are done in total.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from avsep.config import Config, RunSettings
from avsep.errors import AvsepError

log = logging.getLogger("avsep")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", type=Path, default=Path("avsep_quickstart"), help="where everything goes")
    parser.add_argument("--minutes", type=float, default=8.0, help="training time in minutes (default: 8)")
    parser.add_argument("--per-label", type=int, default=12, help="solo videos generated per instrument")
    parser.add_argument("--labels", nargs="+", help="instruments to generate (default: a distinct set of 5)")
    parser.add_argument("--pairs", type=int, default=60, help="held-out mixtures to evaluate")
    parser.add_argument("--workers", type=int, default=2, help="processes for generation and preprocessing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the `small` configuration")


def _stage(name: str) -> None:
    print(f"\n== {name}", flush=True)


def train_for(cfg: Config, data: Path, run_dir: Path, minutes: float) -> Path:
    """Train (or resume) until ``minutes`` of training time are done; returns best.pt."""
    from avsep.models.checkpoint import load_checkpoint
    from avsep.training.trainer import Trainer

    last = run_dir / "last.pt"
    state = load_checkpoint(last) if last.is_file() else None
    done = state["train_state"]["seconds"] / 60 if state else 0.0
    if state:
        cfg = Config.from_dict(state["config"])
    if done < minutes:
        cfg = cfg.replace(epochs=max(cfg.epochs, 10_000))  # time, not epochs, bounds the quickstart
        settings = RunSettings(max_minutes=minutes - done)
        Trainer(cfg, data / "train.csv", data / "val.csv", run_dir, settings, resume_state=state).fit()
    else:
        print(f"already trained for {done:.1f} minutes in {run_dir}")
    return run_dir / "best.pt"


def separate_duet(checkpoint: Path, duet: dict, out_dir: Path) -> tuple[list[Path], str]:
    """Separate each source of a generated duet by its box; returns the wav paths and a score line."""
    from avsep.data.decode import write_wav
    from avsep.evaluation.scoring import score_against_stems
    from avsep.inference.separator import Box, Separator

    separator = Separator(checkpoint)
    sources = duet["sources"]
    result = separator.separate(duet["video"], [Box(*s["box"]) for s in sources])
    paths = [out_dir / "mixture.wav"]
    write_wav(paths[0], result.mixture, result.sample_rate)
    for source, audio in zip(sources, result.sources):
        paths.append(out_dir / f"{source['label']}.wav")
        write_wav(paths[-1], audio, result.sample_rate)
    # The generated duet comes with its stems, so the separation can be scored too.
    sdr, mix_sdr = score_against_stems([s["stem"] for s in sources], result.sources, result.mixture,
                                       result.sample_rate)
    score = ", ".join(f"{s['label']} {a:.2f} dB (mixture {m:.2f})" for s, a, m in zip(sources, sdr, mix_sdr))
    return paths, f"duet {Path(duet['video']).name} by boxes: SDR {score}"


def run(args: argparse.Namespace) -> int:
    from avsep.synth import load_duets, make_duets, make_solo_collection

    from avsep.evaluation.evaluate import evaluate
    from avsep.evaluation.tables import format_table
    from avsep.data.preprocess import format_summary, preprocess

    if args.minutes <= 0 or args.per_label < 3:
        raise AvsepError("--minutes must be positive and --per-label at least 3 (train, val and test videos)")
    work: Path = args.workdir
    cfg = Config.preset("small").with_overrides(args.overrides)
    began = time.monotonic()

    _stage("1/5 generating solo and duet videos")
    make_solo_collection(work / "videos", labels=args.labels, videos_per_label=args.per_label, seed=args.seed,
                         workers=args.workers)
    make_duets(work / "duets", pairs=None, count=2, seed=args.seed + 100)
    duets = load_duets(work / "duets")  # the manifest with absolute paths

    _stage("2/5 preprocessing")
    print(format_summary(preprocess(work / "videos", work / "data", workers=args.workers, val_frac=0.15,
                                    test_frac=0.25, seed=args.seed)))

    _stage(f"3/5 training the `small` model for {args.minutes:g} minutes")
    best = train_for(cfg, work / "data", work / "run", args.minutes)

    _stage("4/5 evaluating on held-out mixtures")
    summary = evaluate(best, work / "data" / "test.csv", pairs=args.pairs, oracle="ibm", report_dir=work / "report")

    _stage("5/5 separating a duet by the boxes of its two instruments")
    wavs, duet_score = separate_duet(best, duets[0], work / "separated")

    print("\n" + format_table(summary))
    gain = summary["model"]["SDR"]["median"] - summary["mixture"]["SDR"]["median"]
    print(f"\nmedian SDR: model {summary['model']['SDR']['median']:.2f} dB, "
          f"mixture {summary['mixture']['SDR']['median']:.2f} dB (+{gain:.2f} dB) "
          f"on {summary['pairs']} held-out mixtures")
    print(duet_score)
    print(f"report:    {summary['report']}")
    print(f"separated: {', '.join(str(p) for p in wavs)}")
    print(f"checkpoint: {best}    total time {(time.monotonic() - began) / 60:.1f} min")
    return 0
