"""Reading frames with avsep's own one-thread scaler against PyAV's shared, threaded one.

avsep.data.decode converts each decoded frame with a ``VideoReformatter`` of its own on one
thread, because PyAV 18.1.1's shared per-thread scaler runs a thread pool that a forked process
inherits without its threads (it then hangs; tests/data/test_decode.py). This prints what that
costs: ``read_frames`` of a generated 1080p H.264 video at 8 fps to 224 px, with each scaler in
turn, alternated in one process so that the machine's load affects both alike.

Usage:  python benchmarks/bench_frame_scaler.py [--rounds 5] [--seconds 6]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.data import decode  # noqa: E402


def make_video(path: Path, seconds: int, width: int = 1920, height: int = 1080, fps: int = 30) -> None:
    """Noise that moves sideways: nothing for the encoder or the scaler to skip."""
    container = av.open(str(path), "w")
    stream = container.add_stream("libx264", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    base = np.random.default_rng(0).integers(0, 255, (height, width, 3), np.uint8)
    for i in range(seconds * fps):
        frame = av.VideoFrame.from_ndarray(np.roll(base, 4 * i, axis=1), format="rgb24")
        frame.pts = i
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
    container.close()


def shared_scaler(frame, short_side, pixel_aspect, reformatter):
    """The conversion as it was before: PyAV's shared scaler with its default threads."""
    size = decode._resized_size(*decode._display_size(frame.width, frame.height, pixel_aspect, None), short_side)
    return frame.reformat(width=size[0], height=size[1], format="rgb24", interpolation="AREA").to_image()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=6)
    args = parser.parse_args()
    variants = {"avsep's own scaler, 1 thread": decode._to_image, "PyAV's shared scaler, default threads": shared_scaler}
    times = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "noise_1080p.mp4"
        make_video(video, args.seconds)
        for _ in range(args.rounds):
            for name, convert in variants.items():
                decode._to_image = convert
                start = time.perf_counter()
                count = sum(1 for _ in decode.read_frames(video, fps=8, short_side=224))
                times[name].append(time.perf_counter() - start)
    print(f"read_frames of a {args.seconds} s 1080p H.264 video, {count} frames at 8 fps to 224 px; "
          f"PyAV {av.__version__}, {args.rounds} alternated rounds")
    for name, seconds in times.items():
        print(f"  {name:40s} median {statistics.median(seconds):.3f} s  ({', '.join(f'{s:.3f}' for s in seconds)})")
    ratio = statistics.median(times["avsep's own scaler, 1 thread"]) / statistics.median(times["PyAV's shared scaler, default threads"])
    print(f"  own / shared: {ratio:.2f}")


if __name__ == "__main__":
    main()
