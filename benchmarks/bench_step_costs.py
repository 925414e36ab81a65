"""Two costs of a `small` training step, before and after, timed alternately in one process.

    python benchmarks/bench_step_costs.py [--data /tmp/gen/data]

* The random equaliser of every training source (``eq_db``): an FFT at the clip's length
  (2**15 - 1 = 7 * 31 * 151 samples, numpy) against one at a fast length (scipy, zero-padded).
* The binary target masks: ``argmax`` over the sources (dimension 1 of (B, N, F, T)) against the
  running comparison :func:`avsep.dsp.masks.target_masks` uses.

* The warped magnitudes of a batch's mixtures and sources: ``warp(spec.abs())`` against
  :func:`avsep.dsp.spectrogram.warped_magnitude` (only the rows the warp reads, sqrt(re^2 + im^2)).
* A whole training step of the model (forward, backward, Adam; bf16 autocast as the quickstart
  trains on a CPU with native bfloat16, fp32 with ``--fp32``) with the magnitudes as before,
  against the step as it is.

With ``--data`` (a preprocessed folder), also the time to build a whole training item with
each equaliser. Medians of ``--rounds`` alternating rounds.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import avsep.data.augment as augment  # noqa: E402
from avsep.config import Config  # noqa: E402
import avsep.dsp.inputs as inputs  # noqa: E402
from avsep.dsp.masks import target_masks  # noqa: E402
from avsep.dsp.spectrogram import stft, warp, warped_magnitude  # noqa: E402
from avsep.models.sop import SoundOfPixels  # noqa: E402
from avsep.training.trainer import training_loss  # noqa: E402


def numpy_eq(audio: np.ndarray, sample_rate: int, max_db: float, rng: np.random.Generator) -> np.ndarray:
    """The equaliser as it was: numpy's FFT at the clip's own length."""
    spectrum = np.fft.rfft(audio)
    freqs = np.fft.rfftfreq(len(audio), 1.0 / sample_rate)
    gains_db = rng.uniform(-max_db, max_db, len(augment.EQ_ANCHORS_HZ))
    curve = np.interp(np.log(np.maximum(freqs, 1.0)), np.log(augment.EQ_ANCHORS_HZ), gains_db)
    return np.fft.irfft(spectrum * 10 ** (curve / 20), n=len(audio)).astype(np.float32)


def argmax_targets(source_mags: torch.Tensor) -> torch.Tensor:
    """The binary targets as they were: argmax over the sources."""
    index = torch.arange(source_mags.shape[1]).view(1, -1, 1, 1)
    return (source_mags.argmax(dim=1, keepdim=True) == index).to(source_mags.dtype)


def abs_then_warp(spec: torch.Tensor, cfg: Config) -> torch.Tensor:
    """The warped magnitude as it was: torch's complex abs of every row, then the warp."""
    return warp(spec.abs(), cfg)


def step_timer(cfg: Config, before: bool, autocast: bool) -> Callable[[], object]:
    """One training step of a fresh model on a random batch, as it was (``before``) or as it is."""
    torch.manual_seed(0)
    model = SoundOfPixels(cfg)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    batch_size, num, grid = cfg.batch_size, cfg.num_mix, cfg.grid_size
    batch = {"mix": torch.randn(batch_size, cfg.audio_len) * 0.1,
             "sources": torch.randn(batch_size, num, cfg.audio_len) * 0.05,
             "frames": torch.randn(batch_size, num, 3, cfg.num_frames, cfg.img_size, cfg.img_size),
             "owner": torch.arange(num).view(1, num, 1, 1).expand(batch_size, num, grid, grid).contiguous(),
             "labels": torch.arange(num).repeat(batch_size, 1)}

    def step() -> None:
        if before:  # the magnitudes as they were
            inputs.warped_magnitude = abs_then_warp
        try:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                loss = training_loss(model, batch, cfg, torch.device("cpu"))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        finally:
            inputs.warped_magnitude = warped_magnitude
    return step


def timed(fn: Callable[[], object], repeats: int) -> float:
    began = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - began) / repeats


def alternate(name: str, before: Callable[[], object], after: Callable[[], object], rounds: int, repeats: int) -> None:
    before(), after()  # warm-up
    pairs = [(timed(before, repeats), timed(after, repeats)) for _ in range(rounds)]
    old, new = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
    print(f"{name:<50}before {old * 1e3:8.2f} ms   after {new * 1e3:8.2f} ms   ratio {old / new:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="a preprocessed folder (train.csv): also time whole items")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fp32", action="store_true", help="time the model step in fp32 instead of bf16 autocast")
    args = parser.parse_args()
    torch.set_num_threads(2)
    cfg = Config.preset("small")
    print(f"torch {torch.__version__}, 2 threads; `small` preset, batch {cfg.batch_size}")
    rng = np.random.default_rng(0)
    clip = rng.standard_normal(cfg.audio_len).astype(np.float32)
    alternate(f"equaliser, one {cfg.audio_len}-sample source", lambda: numpy_eq(clip, cfg.sample_rate, 6.0, rng),
              lambda: augment.random_eq(clip, cfg.sample_rate, 6.0, rng), args.rounds, 50)
    mags = torch.rand(cfg.batch_size, cfg.num_mix, cfg.freq_bins, cfg.audio_len // cfg.stft_hop + 1)
    assert torch.equal(argmax_targets(mags), target_masks(mags, mags.sum(1, keepdim=True), "binary"))
    alternate(f"binary targets, {tuple(mags.shape)}", lambda: argmax_targets(mags),
              lambda: target_masks(mags, mags, "binary"), args.rounds, 10)
    spec = stft(torch.randn(cfg.batch_size * (cfg.num_mix + 1), cfg.audio_len) * 0.1, cfg)
    assert torch.allclose(abs_then_warp(spec, cfg), warped_magnitude(spec, cfg), rtol=1e-5, atol=1e-7)
    alternate(f"warped magnitudes, {tuple(spec.shape)} complex", lambda: abs_then_warp(spec, cfg),
              lambda: warped_magnitude(spec, cfg), args.rounds, 10)
    precision = "fp32" if args.fp32 else "bf16"
    alternate(f"model training step, batch {cfg.batch_size}, {precision}", step_timer(cfg, True, not args.fp32),
              step_timer(cfg, False, not args.fp32), args.rounds, 4)
    if args.data:
        torch.set_num_threads(1)  # as in a loader worker
        import avsep.data.mixtures as mixtures
        from avsep.data.index import read_index

        index = args.data / "train.csv"
        items = mixtures.MixtureDataset(mixtures.check_rows(read_index(index), index), cfg, train=True, seed=0)
        fast_eq = augment.random_eq

        def item_with(eq: Callable) -> Callable[[], object]:
            count = iter(range(10 ** 9))  # each arm builds the same sequence of items

            def build() -> object:
                mixtures.random_eq = eq  # the name the dataset calls
                try:
                    return items[next(count) % len(items)]
                finally:
                    mixtures.random_eq = fast_eq
            return build
        alternate("training item (2 sources, frames, eq), 1 thread", item_with(numpy_eq), item_with(fast_eq),
                  args.rounds, 40)


if __name__ == "__main__":
    main()
