"""What a training run writes besides checkpoints: log.csv, curves.png, TensorBoard, a progress bar."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from tqdm import tqdm

from avsep.utils import atomic_write_text
from avsep.viz.images import save_png
from avsep.viz.plots import training_curves

LOG_FIELDS = ["step", "epoch", "seconds", "loss", "lr", "samples_per_s", "val_sdr"]


class RunLog:
    """log.csv and, if installed, TensorBoard.

    On resume, rows logged after the checkpoint (and a line torn by a kill) are dropped, so
    the log matches the model that training continues from.
    """

    def __init__(self, run_dir: Path, step: int):
        self.path = run_dir / "log.csv"
        self.rows = [row for row in self._read() if row["step"] <= step]
        text = io.StringIO()
        writer = csv.DictWriter(text, LOG_FIELDS)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, text.getvalue())
        self.tb = None
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.tb = SummaryWriter(str(run_dir / "tb"), purge_step=step + 1)
        except Exception:  # TensorBoard is optional
            pass

    def _read(self) -> list[dict]:
        if not self.path.is_file():
            return []
        rows = []
        with open(self.path, newline="") as f:
            for row in csv.DictReader(f):
                if None in row.values() or not (row.get("step") or "").isdigit():
                    continue  # a torn line
                row["step"] = int(row["step"])
                rows.append(row)
        return rows

    def write(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, LOG_FIELDS).writerow(row)
        if self.tb:
            for key in ("loss", "samples_per_s", "val_sdr"):
                if row.get(key) not in (None, ""):
                    self.tb.add_scalar(key, float(row[key]), row["step"])

    def plot(self) -> None:
        """Write curves.png: the loss and the validation SDR against the step."""
        validated = [r for r in self.rows if r.get("val_sdr") not in (None, "")]
        image = training_curves([r["step"] for r in self.rows], [float(r["loss"]) for r in self.rows],
                                [r["step"] for r in validated], [float(r["val_sdr"]) for r in validated])
        save_png(image, self.path.with_name("curves.png"))


class ProgressBar:
    """Steps out of the run's total, or, when the run is bounded by time, seconds out of the budget."""

    def __init__(self, total_steps: int, step: int, max_minutes: float | None, enabled: bool = True):
        self.timed = bool(max_minutes)
        total = round(max_minutes * 60) if self.timed else total_steps
        self.bar = tqdm(total=total, initial=0 if self.timed else step, desc="train", dynamic_ncols=True,
                        unit="s" if self.timed else "step", disable=not enabled)

    def update(self, step: int, seconds: float, **postfix: Any) -> None:
        """``seconds``: training time spent in this run so far."""
        done = min(self.bar.total, round(seconds)) if self.timed else step
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix(step=step, **postfix)

    def close(self) -> None:
        self.bar.close()
