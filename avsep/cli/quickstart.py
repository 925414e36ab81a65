"""``avsep quickstart``: generate demo videos, train, and measure separation on scenes never seen.

Everything happens in ``--workdir`` (default ``./avsep_quickstart``): the demo data
(:mod:`avsep.synth.demo`: training-pool solo videos, held-out solo videos and held-out duets,
preprocessed), ``run/`` (checkpoints), ``report/`` (HTML) and ``separated/`` (a held-out duet
separated by clicking each player, and its heatmap video). Every stage resumes: a second run
reuses what the first one made, and training continues from ``run/last.pt`` to ``--steps``.

The headline is the held-out figure: solo pairs of videos whose backgrounds, melodies and
soundfont were never seen in training, and clicks on held-out duets. The in-distribution
figure (validation videos from the training pools) is printed beside it.
"""
from __future__ import annotations

import argparse
import logging
import time
from collections import Counter
from pathlib import Path

from avsep.config import Config, RunSettings
from avsep.errors import AvsepError
from avsep.synth.instruments import DEFAULT_PER_LABEL

log = logging.getLogger("avsep")
# About 46 minutes of training in fp32 on 2 older AVX2-only cores (measured), an estimated 18 to
# 25 in bf16 on 2 free cores of an AMD EPYC whose native bfloat16 makes `--precision auto` choose
# it (the preset before the wider U-Net of 2026-12-07 took 15 to 20 there, 37 in fp32): the
# `small` preset's 2,850 steps, then 600 with its push towards silence (sparsity_start). With 1.5 s clips these
# steps met issue 7's three targets on the three draws of the data measured, each with two
# training seeds (docs/training.md, "Clips of 1.5 seconds"); with 3 s clips 4,350 steps, about 35
# minutes, were needed.
DEFAULT_STEPS = 3450


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", type=Path, default=Path("avsep_quickstart"), help="where everything goes")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                        help=f"training steps in total (default: {DEFAULT_STEPS}: an estimated 20 to 25 minutes on 2 "
                        "cores with native bfloat16, about 46 in fp32 on older AVX2-only ones; the last 600 with the "
                        "preset's push towards silence)")
    parser.add_argument("--minutes", type=float, help="also stop training after this many minutes of this run")
    parser.add_argument("--per-label", type=int, default=DEFAULT_PER_LABEL,
                        help=f"training-pool solo videos per instrument (default: {DEFAULT_PER_LABEL})")
    parser.add_argument("--heldout-per-label", type=int, default=6, help="held-out solo videos per instrument")
    parser.add_argument("--duets", type=int, default=8, help="held-out duets to click on")
    parser.add_argument("--heldout-backgrounds", metavar="DIR", type=Path,
                        help="a folder of your own pictures (rooms where your videos are filmed) behind the players "
                        "of the held-out videos and duets, instead of the held-out wallpaper packages; a workdir "
                        "keeps the backgrounds it was made with")
    parser.add_argument("--labels", nargs="+", help="instruments (default: a distinct set of 5)")
    parser.add_argument("--pairs", type=int, default=100, help="solo pairs to score, in and out of distribution")
    parser.add_argument("--workers", type=int, default=2, help="processes for generation and preprocessing, and data loaders in training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="autocast of the training step; auto (default): bf16 on a CPU with native bfloat16 "
                        "(AVX512-BF16 or AMX), where it trains 1.2 times faster, else fp32")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a key of the `small` configuration")


def check_videos_per_label(work: Path, per_label: int) -> None:
    """Refuse a workdir whose run was trained on another number of videos per instrument: the
    data would gain or keep videos while ``run/`` went on from the model of the old ones."""
    from avsep.data.preprocess import find_videos

    videos = work / "videos"
    if not (work / "run" / "last.pt").is_file() or not videos.is_dir():
        return
    try:
        counts = set(Counter(video.label for video in find_videos(videos)).values())
    except AvsepError:  # no videos at all: nothing to compare with
        return
    if counts != {per_label}:
        made = "/".join(str(n) for n in sorted(counts))
        raise AvsepError(f"{work} holds a run trained on {made} videos an instrument; for --per-label {per_label} "
                         f"use a new --workdir")


def _stage(name: str) -> None:
    print(f"\n== {name}", flush=True)


def config_changes(saved: Config, asked: Config) -> list[str]:
    """Where a run's saved configuration differs from the one asked, as ``key=saved (asked value)``,
    leaving out ``epochs``: it only sets how long a run may go, which ``train_to`` sets by steps."""
    return [f"{key}={getattr(saved, key)!r} (asked {getattr(asked, key)!r})"
            for key in saved.differences(asked) if key != "epochs"]


def train_to(cfg: Config, data: Path, run_dir: Path, steps: int, minutes: float | None,
             workers: int = 1, device: str = "auto", progress: bool = True,
             precision: str = "fp32") -> tuple[Path, int]:
    """Train (or resume) until ``steps`` steps are done in total; returns best.pt and the steps
    trained (fewer than ``steps`` if ``minutes`` ran out). ``workers``, ``device``, ``progress``
    and ``precision`` are the run's :class:`RunSettings`."""
    from avsep.models.checkpoint import load_checkpoint
    from avsep.training.trainer import Trainer

    last = run_dir / "last.pt"
    state = load_checkpoint(last) if last.is_file() else None
    done = state["train_state"]["step"] if state else 0
    if state:
        saved = Config.from_dict(state["config"])
        changed = config_changes(saved, cfg)
        if changed:  # e.g. a workdir of an older release, whose preset has changed since
            log.warning("%s was trained with %s; it goes on with its own configuration (a new --workdir starts "
                        "afresh)", run_dir, ", ".join(changed))
        cfg = saved
    if done < steps:
        cfg = cfg.replace(epochs=max(cfg.epochs, steps // cfg.steps_per_epoch + 1))  # steps, not epochs, end it
        settings = RunSettings(workers=workers, device=device, max_steps=steps, max_minutes=minutes,
                               progress=progress, precision=precision)
        done = Trainer(cfg, data / "train.csv", data / "val.csv", run_dir, settings, resume_state=state).fit().step
    else:
        print(f"already trained for {done} steps in {run_dir}")
    return run_dir / "best.pt", done


def separate_duet(checkpoint: Path, duet: dict, out_dir: Path) -> list[Path]:
    """Click the centre of each player of a held-out duet; write the stems, the residual and a
    heatmap video. Returns the paths written."""
    from avsep.data.decode import write_wav
    from avsep.evaluation.ensembles import box_at, centre_of
    from avsep.inference import Separator
    from avsep.inference.media import iter_frames
    from avsep.viz.heatmap_video import write_heatmap_video

    analysis = Separator.from_checkpoint(checkpoint, device="cpu").analyze(duet["video"], progress=False)
    points = [centre_of(box_at(s, duet["seconds"] / 2, duet["fps"])) for s in duet["sources"]]
    stems, residual = analysis.separate_regions([_point(p) for p in points], partition=True)
    paths = []
    for source, stem in zip(duet["sources"], stems):
        paths.append(out_dir / f"{source['label']}.wav")
        write_wav(paths[-1], stem, analysis.input_rate)
    paths.append(out_dir / "residual.wav")
    write_wav(paths[-1], residual, analysis.input_rate)
    frames = iter_frames(analysis.source, 8.0, 0.0, analysis.duration, max_side=512)
    paths.append(write_heatmap_video(analysis, out_dir / "heatmap.mp4", frames, 8.0))
    return paths


def _point(xy):
    from avsep.inference import Point

    return Point(*xy)


def headline(report: dict) -> str:
    held, duets, inside = report["held_out"], report["duets"], report["in_distribution"]
    model, mix = held["model"]["SDR"]["median"], held["mixture"]["SDR"]["median"]
    return (f"held-out scenes (backgrounds, melodies and soundfont never seen in training): median SDR "
            f"{model:.2f} dB against {mix:.2f} dB for the mixture ({model - mix:+.2f} dB, {held['mixtures_scored']} "
            f"pairs of {held['videos']} videos)\n"
            f"clicking players of held-out duets: median SDR {duets['click_SDR_median']:.2f} dB against "
            f"{duets['mixture_SDR_median']:.2f} dB ({duets['click_SDR_median'] - duets['mixture_SDR_median']:+.2f} dB); "
            f"pointing {duets['localization'].get('pointing', 0):.0%}\n"
            f"in distribution (validation videos): median SDR {inside['model']['SDR']['median']:.2f} dB against "
            f"{inside['mixture']['SDR']['median']:.2f} dB")


def run(args: argparse.Namespace) -> int:
    from avsep.evaluation.heldout import format_report, generalization_report
    from avsep.synth.demo import check_heldout_backgrounds, prepare_demo

    if args.steps < 1 or args.per_label < 3 or args.heldout_per_label < 2 or args.duets < 1:
        raise AvsepError("--steps and --duets must be positive, --per-label at least 3 and --heldout-per-label at least 2")
    if args.workers < 0:
        raise AvsepError(f"--workers {args.workers}: must be 0 or more")
    work: Path = args.workdir
    check_videos_per_label(work, args.per_label)
    check_heldout_backgrounds(work, args.heldout_backgrounds, "--heldout-backgrounds")
    cfg = Config.preset("small").with_overrides(args.overrides)
    began = time.monotonic()

    _stage("1/4 generating and preprocessing demo videos (training pools and held-out pools)")
    demo = prepare_demo(work, args.labels, args.per_label, args.heldout_per_label, args.duets, seed=args.seed,
                        workers=args.workers, heldout_backgrounds=args.heldout_backgrounds)

    _stage(f"2/4 training the `small` model for {args.steps} steps")
    best, trained = train_to(cfg, demo.data, work / "run", args.steps, args.minutes, args.workers,
                             precision=args.precision)

    _stage("3/4 scoring in distribution and on held-out scenes")
    report = generalization_report(best, demo.data / "val.csv", demo.heldout_index, demo.duets, pairs=args.pairs,
                                   report_dir=work / "report")

    _stage("4/4 separating a held-out duet by clicking each player")
    written = separate_duet(best, demo.duets[0], work / "separated")

    print("\n" + format_report(report))
    print("\n" + headline(report))
    print(f"\nreport:     {report['held_out']['report']}")
    print(f"separated:  {', '.join(str(p) for p in written)}")
    print(f"checkpoint: {best}    total time {(time.monotonic() - began) / 60:.1f} min")
    hint = take_off_hint(report, trained, args.per_label, work)
    if hint:
        print("\n" + hint)
    return 0


TAKE_OFF_DB = 3.0   # validation gain below which a run has not started to separate (docs/training.md)
TRANSFER_DB = 6.0   # held-out solo-pair gain that issue 7 asks of the quickstart's model
# Held-out scenes within this much of the validation videos: the model transfers what it has
# learnt and has simply learnt little yet. A coarse rule from few runs: the two that had memorised
# their pictures scored 3.0 and 7.3 dB higher in distribution than on held-out pairs
# (docs/training.md, "Thirty-two videos an instrument"), a late start there 1.8 dB, and the five
# other instruments -0.1 dB (docs/benchmarks.md, "Five other instruments").
SLOW_GAP_DB = 2.0


def take_off_hint(report: dict, steps: int, per_label: int, workdir: Path) -> str | None:
    """What to do when the model has not yet started to separate, or separates the videos of its
    training pools but transfers weakly to held-out scenes (None when neither). ``steps`` is how
    many the run has trained, ``per_label`` its training-pool videos per instrument and
    ``workdir`` the quickstart's folder (whose data a second run would reuse)."""
    inside, held = (report[k] for k in ("in_distribution", "held_out"))
    gain = inside["model"]["SDR"]["median"] - inside["mixture"]["SDR"]["median"]
    if gain < TAKE_OFF_DB:
        return (f"note: the model gains only {gain:+.2f} dB on validation videos after {steps} steps: it has not "
                f"yet started to separate, which on some draws of the data takes up to 3,000 steps or more. Run "
                f"the same command with --steps {max(steps + 1600, DEFAULT_STEPS)} to continue this run (see "
                f"docs/training.md, 'take-off').")
    transfer = held["model"]["SDR"]["median"] - held["mixture"]["SDR"]["median"]
    if transfer >= TRANSFER_DB:
        return None
    if steps < DEFAULT_STEPS:  # stopped early (--steps or --minutes): the preset's steps come first
        return (f"note: the model gains only {transfer:+.2f} dB on held-out scenes after {steps} steps. Run the "
                f"same command with --steps {DEFAULT_STEPS} to continue this run to the quickstart's default.")
    if transfer >= gain - SLOW_GAP_DB:
        # Learning slowly, not memorising: five mostly melodic instruments validated at 3.1 dB and
        # gained +3.54 dB on held-out pairs at 3,450 steps, +5.16 dB at 4,350 (the preset before
        # 2026-12-07; today's validated at 4.2 dB and gained +4.60 at 3,450: docs/benchmarks.md).
        said = (f"note: the model gains {gain:+.2f} dB on validation videos and {transfer:+.2f} dB on held-out "
                f"scenes after {steps} steps: it transfers what it has learnt, but has learnt little.")
        if steps < DEFAULT_STEPS + 1000:
            return (f"{said} Run the same command with --steps {steps + 1000} to continue this run (on five "
                    f"mostly melodic instruments 900 more steps added 1.6 dB; docs/benchmarks.md, 'Five other "
                    f"instruments').")
        return (f"{said} Pairs of melodic instruments are the recipe's known limit: their held-out figures stayed "
                f"under 6 dB with more steps too (docs/training.md, 'What still limits the melodic pairs').")
    # Where this was probed (two data draws of 16 videos an instrument), the vision network had
    # learnt its training pictures, not the instruments; twice the videos, with 1,000 more steps
    # for a later start, met the solo-pair and click targets on all three draws tried, and 64
    # videos at 4,350 steps separated held-out pairs 2.2 dB better than 32 on seed 0's draw but
    # had barely started on seed 1's (docs/training.md, "Thirty-two videos an instrument"; 64 with
    # 1,000 more steps is not measured, with 3 s clips or 1.5 s ones).
    # A new folder, since a second run reuses the data of its workdir.
    more, longer = 2 * per_label, steps + 1000   # steps >= DEFAULT_STEPS here (returned above otherwise)
    return (f"note: the model gains {gain:+.2f} dB on validation videos but only {transfer:+.2f} dB on held-out "
            f"scenes after {steps} steps: its vision network has likely learnt its {per_label} training videos an "
            f"instrument by their pictures rather than by the instruments. More videos make that harder, though "
            f"the model may start to separate later: run the same command with --workdir {workdir}_{more} "
            f"--per-label {more} --steps {longer} (docs/training.md, 'Thirty-two videos an instrument').")
