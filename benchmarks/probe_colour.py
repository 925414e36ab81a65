"""Does colour steer the energy map? Pointing on duets with their frames as they are, grey, and
with every hue turned half a circle.

    python benchmarks/probe_colour.py --checkpoint RUN/best.pt --duets WORKDIR/duets

For each generated duet (``bench_generalization.py`` makes them under ``WORKDIR/duets``) the
model analyses the duet's audio with three versions of its frames, and ``score_pointing`` asks,
at every window where a player sounds, whether the energy map's peak falls in the box of a
sounding instrument. Prints each duet's share of hits per version, then the totals. A model that finds
instruments by their shape points about as well in grey; one that finds them by their colour
loses hits in grey and with the hues turned, and may gain them where the background shares an
instrument's colour.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.data.decode import load_audio, read_frames  # noqa: E402
from avsep.errors import AvsepError  # noqa: E402
from avsep.evaluation.ensembles import score_pointing  # noqa: E402
from avsep.inference import Separator  # noqa: E402
from avsep.inference.separator import VideoClip  # noqa: E402
from avsep.synth import load_duets  # noqa: E402


def turn_hues(image: Image.Image, turns: float = 0.5) -> Image.Image:
    """``image`` with every hue rotated by ``turns`` of a circle (saturation and value kept)."""
    hue, saturation, value = image.convert("HSV").split()
    shift = int(round(turns * 256))
    return Image.merge("HSV", (hue.point(lambda h: (h + shift) % 256), saturation, value)).convert("RGB")


VERSIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "as is": lambda image: image,
    "grey": lambda image: image.convert("L").convert("RGB"),
    "hues turned": turn_hues,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--duets", type=Path, required=True, help="a folder of generated duets (its duets.json)")
    args = parser.parse_args()
    if not (args.duets / "duets.json").is_file():
        raise AvsepError(f"{args.duets}: no duets.json (make duets with bench_generalization.py or `avsep generate duets`)")
    torch.set_num_threads(2)  # the 2-core machines of docs/benchmarks.md, as the other probes
    separator = Separator.from_checkpoint(args.checkpoint, device="cpu")
    rate_of_frames = separator.cfg.frame_rate
    hits: dict[str, list[bool]] = {name: [] for name in VERSIONS}
    for entry in load_duets(args.duets):
        # Full size: the boxes are in the video's pixels, and the analysis maps onto the frames it is given.
        frames = list(read_frames(entry["video"], rate_of_frames, short_side=None))
        rate = int(entry["audio_rate"])
        audio = load_audio(entry["video"], rate)
        shares = []
        for name, change in VERSIONS.items():
            clip = VideoClip(audio, rate, [change(frame) for frame in frames], rate_of_frames)
            found = score_pointing(separator.analyze(clip, progress=False), entry)["hit"]
            hits[name] += found
            shares.append(f"{name} {sum(found)}/{len(found)}")
        print(f"{entry['name']}: " + ", ".join(shares), flush=True)
    print("pointing: " + ", ".join(f"{name} {np.mean(found):.0%} of {len(found)} windows"
                                   for name, found in hits.items()))


if __name__ == "__main__":
    try:
        main()
    except AvsepError as error:  # a missing checkpoint or duet folder: one line, no traceback
        raise SystemExit(f"probe_colour: {error}") from None
