"""``avsep evaluate``: score a checkpoint with BSS Eval on fixed mixtures (see avsep.evaluation)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from avsep.cli import checks
from avsep.errors import AvsepError
from avsep.evaluation.evaluate import evaluate
from avsep.evaluation.tables import format_table, json_safe
from avsep.utils import check_output_folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", type=Path, required=True, help="a checkpoint from `avsep train`")
    parser.add_argument("--data", type=Path, help="folder from `avsep preprocess`")
    parser.add_argument("--split", default="test", choices=["train", "val", "test"], help="split of --data")
    parser.add_argument("--index", type=Path, help="any index file, instead of --data/--split")
    parser.add_argument("--num-mix", type=int, help="sources per mixture (default: the checkpoint's)")
    parser.add_argument("--pairs", type=int, default=100, help="distinct mixtures to score (default: 100)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fixed mixtures")
    parser.add_argument("--oracle", choices=["ibm", "irm"], help="also score ideal masks on the same mixtures")
    parser.add_argument("--strict", action="store_true",
                        help="fail if the index holds videos that the checkpoint was trained on")
    parser.add_argument("--report", type=Path, metavar="DIR", help="write an HTML report there")
    parser.add_argument("--report-items", type=int, default=12, help="mixtures shown in the report")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=0, help="data-loader processes")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1... (default: cuda if available)")


def run(args: argparse.Namespace) -> int:
    checks.at_least(args, pairs=1, batch_size=1, workers=0, report_items=0)
    if args.report is not None:
        check_output_folder(args.report, "--report")  # before the scoring, not after it
    if args.index:
        index = args.index
    elif args.data:
        index = args.data / f"{args.split}.csv"
    else:
        raise AvsepError("give --data FOLDER [--split test] or --index FILE")
    summary = evaluate(args.checkpoint, index, args.num_mix, args.pairs, args.seed, args.oracle, args.report,
                       args.report_items, args.batch_size, args.workers, args.device, progress=not args.json,
                       strict=args.strict)
    if args.json:
        print(json.dumps(json_safe(summary)))
    else:
        print(format_table(summary))
        if "report" in summary:
            print(f"report: {summary['report']}")
    return 0
