"""Click-to-first-sound time of ``avsep app``, measured in a real headless Chromium.

Usage:  python benchmarks/bench_app.py --checkpoint RUN/best.pt [--video V.mp4] [--clicks 20]
                                       [--detector WEIGHTS] [--screenshot docs/images/app.png]
                                       [--final-click X,Y]

Starts the app on 127.0.0.1 in this process, opens the video (default: the browser test's
generated violin and drum duet) in headless Chromium (Playwright driving /usr/bin/chromium or
$AVSEP_CHROMIUM), waits for the analysis, then clicks random spots of the picture, alternately
while the video plays and while it is paused. For each click the page notes ``performance.now()``
at the click and when the AudioBufferSourceNode of the first sound is started; the time between
is the click-to-first-sound time. Also shown: the whole request (fetch to samples) and the part
of it spent in the server's query. Target: at most 300 ms on a 2-core machine.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avsep.app import App, AppOptions  # noqa: E402
from avsep.app.browser_testing import AppPage, chromium  # noqa: E402
from avsep.cli.separate import numbers  # noqa: E402
from avsep.errors import AvsepError  # noqa: E402
from avsep.utils import atomic_path  # noqa: E402

TARGET_MS = 300.0


def duet_video(folder: Path) -> Path:
    """The browser test's duet: violin and drum, seed 3 of the training pools (tests/app/conftest.py)."""
    from avsep.synth import load_duets, make_duets

    make_duets(folder / "duets", pairs=[("violin", "drum")], count=1, seed=3, pool="train")
    return Path(load_duets(folder / "duets")[0]["video"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--video", type=Path, help="default: a generated duet")
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--detector", help="detector weights, to draw object boxes (default: none)")
    parser.add_argument("--screenshot", type=Path, help="save a screenshot of the page here at the end")
    parser.add_argument("--final-click", metavar="X,Y", help="X,Y in frame pixels: a last click, paused, before the "
                        "screenshot (default: none), so that it shows a chosen spot rather than a random one")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.final_click:
        if not args.screenshot:
            parser.error("--final-click only sets up the screenshot: give --screenshot too")
        try:
            args.final_click = numbers(args.final_click, 2, "final-click")   # as `avsep separate --point`
        except AvsepError as err:
            parser.error(str(err))

    with tempfile.TemporaryDirectory(prefix="bench-app-") as tmp:
        video = args.video or duet_video(Path(tmp))
        folder = Path(tmp) / "videos"
        folder.mkdir()
        shutil.copyfile(video, folder / video.name)   # a link out of the folder would not be listed
        app = App(AppOptions(checkpoint=args.checkpoint, videos=folder, port=0, device="cpu",
                             detect=bool(args.detector), detector=args.detector, tmpdir=Path(tmp))).start()
        try:
            with chromium() as browser:
                results = run_clicks(AppPage(browser, app.url), video.name, args)
        finally:
            app.close()
    report(results)


def run_clicks(page: AppPage, name: str, args: argparse.Namespace) -> list[dict]:
    began = time.monotonic()
    info = page.open(name)
    print(f"{name}: {info['duration']:.1f} s, {info['frame'][0]}x{info['frame'][1]}, analysed in "
          f"{time.monotonic() - began:.1f} s (page load included)")
    rng = np.random.default_rng(args.seed)
    width, height = info["frame"]
    for k in range(args.clicks):
        if k % 2:
            page.page.evaluate("video.pause()")
        elif page.page.evaluate("video.currentTime > avsep.state.info.duration - 3"):
            page.page.evaluate("video.currentTime = 0")
        page.page.wait_for_timeout(300)
        page.click_frame(rng.uniform(0.05, 0.95) * width, rng.uniform(0.05, 0.95) * height)
        page.wait_until(f"avsep.metrics.filter((m) => m.cause === 'click').length >= {k + 1}", timeout_s=30)
        page.page.wait_for_timeout(700)   # let the follow-up chunk arrive: the next click starts afresh
    if args.screenshot:
        page.page.evaluate("video.pause()")
        page.page.wait_for_timeout(300)
        if args.final_click:   # not counted: the figures above are the random clicks'
            page.click_frame(*args.final_click)
            page.wait_until(f"avsep.metrics.filter((m) => m.cause === 'click').length >= {args.clicks + 1}",
                            timeout_s=30)
            page.page.wait_for_timeout(700)
        args.screenshot.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(args.screenshot) as tmp:
            page.page.screenshot(path=str(tmp), type="png")  # the .part name says no type
        print(f"screenshot: {args.screenshot}")
    if page.errors:
        print("page errors:", *page.errors, sep="\n  ")
    return page.metrics()[:args.clicks]


def report(results: list[dict]) -> None:
    def line(name: str, values: list[float]) -> str:
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
        return (f"{name:<28}{statistics.median(values):>9.1f}{p90:>9.1f}{max(values):>9.1f}")

    print(f"\n{len(results)} clicks                      median      p90      max   (ms)")
    print(line("click to first sound", [r["clickToAudioMs"] for r in results]))
    print(line("  request (fetch + decode)", [r["requestMs"] for r in results]))
    print(line("  server query", [r["serverMs"] for r in results if r["serverMs"] is not None]))
    worst = max(r["clickToAudioMs"] for r in results)
    print(f"\ntarget {TARGET_MS:.0f} ms: {'met' if worst <= TARGET_MS else 'NOT met'} (worst click {worst:.0f} ms)")


if __name__ == "__main__":
    main()
