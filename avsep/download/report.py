"""What the user sees: the progress bar, the end-of-run summary and the dry-run listing."""
from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from .indexes import Item

STATUSES = ("done", "failed", "transient")
STATUS_HELP = {
    "done": "downloaded and verified",
    "failed": "permanently unavailable (skipped on rerun; --retry-failed tries again)",
    "transient": "gave up for now (a rerun tries again)",
}


class Progress:
    """A tqdm bar with done, failed and remaining counts; log lines go above it, not through it."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.enabled = total, enabled
        self.counts: collections.Counter = collections.Counter()
        self._bar = None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> "Progress":
        if self.enabled and self.total:
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._stack.enter_context(logging_redirect_tqdm())
            self._bar = self._stack.enter_context(tqdm(total=self.total, unit="video", dynamic_ncols=True,
                                                       mininterval=0.5, desc="download"))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()

    def update(self, record: dict[str, Any]) -> None:
        self.counts[record["status"]] += 1
        if self._bar is not None:
            finished = sum(self.counts.values())
            self._bar.set_postfix_str(f"done={self.counts['done']} failed={self.counts['failed']} "
                                      f"retry-later={self.counts['transient']} remaining={self.total - finished}",
                                      refresh=False)
            self._bar.update(1)


@dataclass
class Summary:
    """Counts by status for this run and for everything selected, and the top failure reasons."""

    selected: int
    skipped: int
    this_run: collections.Counter = field(default_factory=collections.Counter)
    overall: collections.Counter = field(default_factory=collections.Counter)
    reasons: collections.Counter = field(default_factory=collections.Counter)
    bytes: int = 0

    @classmethod
    def build(cls, items: Sequence[Item], state: dict[str, dict[str, Any]], records: Sequence[dict[str, Any]],
              skipped: int = 0) -> "Summary":
        summary = cls(selected=len(items), skipped=skipped)
        summary.this_run.update(r["status"] for r in records)
        for item in items:
            record = state.get(item.relpath)
            status = record["status"] if record else "not tried"
            summary.overall[status] += 1
            if record and status != "done":
                summary.reasons[record.get("reason") or "unknown"] += 1
            if record and status == "done":
                summary.bytes += int(record.get("bytes") or 0)
        return summary

    @property
    def incomplete(self) -> int:
        """Items a rerun would try again (transient failures, or never reached)."""
        return self.overall["transient"] + self.overall["not tried"]

    def table(self, top: int = 10) -> str:
        lines = [f"{'status':<10} {'this run':>9} {'all selected':>13}"]
        for status in (*STATUSES, "not tried"):
            if status == "not tried" and not self.overall[status]:
                continue
            lines.append(f"{status:<10} {self.this_run[status]:>9} {self.overall[status]:>13}"
                         f"   {STATUS_HELP.get(status, 'not reached (interrupted)')}")
        lines.append(f"{'skipped':<10} {self.skipped:>9} {'':>13}   done or failed in an earlier run")
        lines.append(f"{'total':<10} {'':>9} {self.selected:>13}   {self.bytes / 1e6:.1f} MB on disk")
        if self.reasons:
            lines.append("top failure reasons:")
            lines += [f"  {count:>6}  {reason}" for reason, count in self.reasons.most_common(top)]
        return "\n".join(lines)


def dry_run_text(items: Sequence[Item], out: str, state: dict[str, dict[str, Any]], show: int = 10,
                 retry_failed: bool = False) -> str:
    """What a run would fetch: counts per label, the first items and their URLs. No network access."""
    done = sum(1 for i in items if state.get(i.relpath, {}).get("status") == "done")
    failed = sum(1 for i in items if state.get(i.relpath, {}).get("status") == "failed")
    todo = [i for i in items if state.get(i.relpath, {}).get("status") not in
            ({"done"} if retry_failed else {"done", "failed"})]
    per_label = collections.Counter(i.label for i in items)
    lines = [f"dry run: {len(items)} videos selected, {done} done and {failed} failed in earlier runs, "
             f"{len(todo)} would be fetched into {out}", "", f"{'videos':>7}  label -> folder"]
    folders = {i.label: i.folder for i in items}
    lines += [f"{count:>7}  {label}" + (f" -> {folders[label]}" if folders[label] != label else "")
              for label, count in sorted(per_label.items())]
    lines += ["", f"first {min(show, len(todo))} to fetch:"]
    for item in todo[:show]:
        span = "" if item.start is None else f" [{_span(item.start, item.duration)}]"
        lines.append(f"  {item.url}{span} -> {item.relpath}")
    return "\n".join(lines)


def _span(start: float, duration: Optional[float]) -> str:
    return f"{start:g}-{start + duration:g} s" if duration else f"{start:g} s-end"
