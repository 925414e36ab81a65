"""Clicking each player of held-out scenes of 2, 3 or 4 players, and where the sound peaks.

    python benchmarks/bench_ensembles.py --checkpoint RUN/best.pt --scenes /tmp/trios --players 3 [--count 24] [--seed 702]

Makes ``--count`` held-out scenes of ``--players`` players in ``--scenes`` (the test pool:
backgrounds, soundfont and melodies never seen in training; ``--backgrounds DIR`` puts your own
pictures behind them), unless that folder already holds scenes, then scores them as the
quickstart scores its duets: a click at the centre of each player's box (the median SDR of the
clicked players against the mixture's, and the median of each player's own gain) and pointing
(the energy map's peak inside a sounding player's box, with a 90% interval over scenes). The
instruments are the quickstart's unless ``--labels`` says otherwise; use the ones the model was
trained on. Per group of labels the gains are printed worst first, and everything is written to
``--json`` if given.

The quickstart and bench_generalization.py click duets only; with more players each one has a
smaller share of the mixture (in these scenes, whose players differ in loudness, the median
player's SDR in the mixture is about -5 dB with three players and -7 dB with four, against 0 dB
with two), so clicks start lower and can gain more.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.errors import AvsepError  # noqa: E402
from avsep.evaluation.heldout import TABLE_HEADER, click_details, click_row, evaluate_duets  # noqa: E402
from avsep.evaluation.tables import format_label_groups, json_safe  # noqa: E402
from avsep.synth import load_duets, make_duets, use_folder  # noqa: E402
from avsep.utils import atomic_write_text  # noqa: E402


def held_out_scenes(folder: Path, players: int, count: int, seed: int, labels: list[str] | None,
                    backgrounds: Path | None, workers: int) -> list[dict]:
    """The scenes in ``folder`` (made there first when it holds none)."""
    if not (folder / "duets.json").is_file():
        with use_folder("test", backgrounds):
            make_duets(folder, pairs=None, count=count, seed=seed, pool="test", players=players, labels=labels,
                       workers=workers, progress=True)
    return load_duets(folder)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--scenes", type=Path, required=True, help="folder of the scenes (made there if empty)")
    parser.add_argument("--players", type=int, default=3, choices=(2, 3, 4))
    parser.add_argument("--count", type=int, default=24)
    parser.add_argument("--seed", type=int, default=702)
    parser.add_argument("--labels", nargs="+", help="instruments (default: the quickstart's)")
    parser.add_argument("--backgrounds", type=Path, help="a folder of your own pictures behind the players")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the whole report there")
    args = parser.parse_args()
    if not args.checkpoint.is_file():
        parser.error(f"--checkpoint {args.checkpoint}: no such file")
    try:
        scenes = held_out_scenes(args.scenes, args.players, args.count, args.seed, args.labels, args.backgrounds,
                                 args.workers)
        report = evaluate_duets(args.checkpoint, scenes, map_grid="fine")
    except (AvsepError, ValueError) as err:
        raise SystemExit(f"bench_ensembles: {err}") from None
    print(f"{args.checkpoint}, scenes of {args.players} players:\n{TABLE_HEADER}\n{click_row(report, 'scenes')}")
    print("\n".join(click_details(report, "scenes")))
    print(format_label_groups(report["label_groups"], "clicked players"))
    if args.json:
        atomic_write_text(args.json, json.dumps(json_safe(report), indent=2))


if __name__ == "__main__":
    main()
