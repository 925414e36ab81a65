"""SDR of separating generated duets by the boxes of their instruments, per pooling of the box.

Usage:  python benchmarks/bench_regions.py --checkpoint RUN/best.pt --duets DUETS_FOLDER
(`avsep quickstart` leaves both: avsep_quickstart/run/best.pt and avsep_quickstart/duets/.)

For each duet and each way of combining a box's grid cells (max-pooled visual vectors, as in
training, or the mean of the per-pixel masks), prints BSS Eval SDR against the true stems,
beside the SDR of the unprocessed mixture.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.evaluation.scoring import score_against_stems  # noqa: E402
from avsep.inference.separator import Box, Separator  # noqa: E402
from avsep.synth import load_duets  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--duets", type=Path, required=True)
    args = parser.parse_args()
    separator = Separator(args.checkpoint)
    print(f"{'duet':<28}{'pooling':<10}{'SDR 1':>8}{'SDR 2':>8}   (dB; mixture in brackets)")
    for duet in load_duets(args.duets):
        video = separator.load_video(duet["video"])
        stems = [s["stem"] for s in duet["sources"]]
        name = " + ".join(s["label"] for s in duet["sources"])
        for pool in ("max", "mean"):
            result = separator.separate(video, [Box(*s["box"]) for s in duet["sources"]], pool=pool)
            sdr, mixture = score_against_stems(stems, result.sources, video.audio, separator.cfg.sample_rate)
            print(f"{name:<28}{pool:<10}{sdr[0]:>8.2f}{sdr[1]:>8.2f}   ({mixture[0]:.2f}, {mixture[1]:.2f})")


if __name__ == "__main__":
    main()
