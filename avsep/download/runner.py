"""Run a download: resume from the ledger, fetch in parallel, verify, record, summarise.

Crash safety comes from three rules:

* nothing is written under ``OUT/<label>/`` except by an atomic rename of a verified file, so a
  kill -9 at any moment leaves either no file or a complete, decodable one;
* all work in progress lives in ``OUT/.tmp/<shard>/`` (a hidden folder, which ``avsep preprocess``
  does not read), and is removed when the next run starts;
* the ledger (``OUT/download*.jsonl``) gets one fsynced line per item as soon as it finishes, so
  a rerun skips what is done or permanently failed, and retries the rest.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import queue
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, Optional, Sequence

from ..errors import AvsepError
from ..utils import Ledger
from .failures import PERMANENT, THROTTLED, MediaError, classify
from .fetch import fetch
from .indexes import Item
from .media import check_playable, to_mp4
from .options import Options
from .throttle import Backoff, Throttle

if TYPE_CHECKING:
    from .report import Summary

log = logging.getLogger("avsep")

DONE, FAILED, TRANSIENT = "done", "failed", "transient"  # ledger statuses
TMP_DIR = ".tmp"


class Stopped(Exception):
    """The run is being interrupted: leave the item for the next run."""


@dataclass
class Plan:
    """What a run will do with each selected item."""

    todo: list[Item] = field(default_factory=list)
    done: list[Item] = field(default_factory=list)      # done in an earlier run, file present
    failed: list[Item] = field(default_factory=list)    # failed for good earlier (skipped)
    found: list[Item] = field(default_factory=list)     # file present without a ledger line (adopted)


def ledger_name(shard: tuple[int, int]) -> str:
    """One ledger per shard, so machines sharing OUT (e.g. over NFS) never append to the same file."""
    return "download.jsonl" if shard[1] == 1 else f"download.shard-{shard[0]}-of-{shard[1]}.jsonl"


def read_state(out: Path) -> dict[str, dict[str, Any]]:
    """The latest ledger record of every output path, over the ledgers of all shards."""
    state: dict[str, dict[str, Any]] = {}
    for path in sorted(out.glob("download*.jsonl")):
        for record in Ledger(path).read():
            if "path" in record:
                state[str(record["path"])] = record
    return state


def make_plan(items: Sequence[Item], out: Path, retry_failed: bool = False) -> Plan:
    """Sort items into done, failed for good, and to do, from the ledger and the files in ``out``."""
    state, plan = read_state(out), Plan()
    for item in items:
        status = state.get(item.relpath, {}).get("status")
        present = (out / item.relpath).is_file()
        if status == DONE and present:
            plan.done.append(item)
        elif status == FAILED and not retry_failed:
            plan.failed.append(item)
        elif present and status != DONE:
            plan.found.append(item)
        else:
            plan.todo.append(item)
    return plan


# --- one item ---------------------------------------------------------------------------------------

@dataclass
class Context:
    out: Path
    tmp: Path
    options: Options
    throttle: Throttle
    backoff: Backoff


def process(item: Item, ctx: Context) -> dict[str, Any]:
    """Fetch, verify and place one item, retrying transient failures; returns its ledger record."""
    started, failure, attempts = time.monotonic(), None, 0
    for attempt in range(ctx.options.retries + 1):
        if not ctx.throttle.wait_turn():
            raise Stopped
        attempts += 1
        folder = ctx.tmp / hashlib.sha1(item.key.encode()).hexdigest()[:16]
        try:
            size = _fetch_verified(item, folder, ctx)
            ctx.throttle.success()
            return _record(item, DONE, "", size, started, attempts)
        except Exception as err:  # every failure is classified below; nothing is lost
            if ctx.throttle.stop.is_set():
                raise Stopped from None
            failure = classify(err)
            log.debug("%s: attempt %d: %s (%s)", item.url, attempts, failure.reason, failure.detail)
            if failure.kind == PERMANENT:
                break
            if failure.kind == THROTTLED:
                ctx.throttle.throttled(failure.reason)
            if attempt < ctx.options.retries:
                if not ctx.throttle.sleep_for(ctx.backoff.delay(attempt, failure.retry_after)):
                    raise Stopped from None
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    assert failure is not None
    status = FAILED if failure.kind == PERMANENT else TRANSIENT
    return _record(item, status, failure.reason, 0, started, attempts, failure.detail)


def _fetch_verified(item: Item, folder: Path, ctx: Context) -> int:
    shutil.rmtree(folder, ignore_errors=True)
    raw, info = fetch(item, folder, ctx.options)
    final = to_mp4(raw, folder / "final.mp4", ctx.options.max_height, ctx.options.ffmpeg or "ffmpeg")
    media = check_playable(final)
    _check_length(item, media.duration, info.get("duration"))
    dest = ctx.out / item.relpath
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(final, dest)  # atomic: OUT only ever holds complete, verified files
    return dest.stat().st_size


def _check_length(item: Item, got: Optional[float], source: Optional[float]) -> None:
    """Catch a download that ended early without an error (ffmpeg stops quietly on a cut stream).

    ``source`` is the whole video's length as yt-dlp reports it (unknown for plain file URLs).
    """
    if got is None:
        return
    if item.start is None:
        expected = source
    elif source is not None:
        remaining = source - item.start
        if remaining <= 0.5:
            raise MediaError(f"clip out of range: the video is {source:.0f} s, the clip starts at {item.start:.0f} s")
        expected = min(item.duration or remaining, remaining)
    else:
        expected = None  # a clip may be short only because the video ends early
    if expected and got < expected - max(1.5, 0.05 * expected):
        raise MediaError(f"truncated: got {got:.1f} s of {expected:.1f} s", transient=True)


def _record(item: Item, status: str, reason: str, size: int, started: float, attempts: int,
            detail: str = "") -> dict[str, Any]:
    record = {"id": item.name, "label": item.label, "status": status, "reason": reason, "bytes": size,
              "seconds": round(time.monotonic() - started, 2), "path": item.relpath, "url": item.url,
              "attempts": attempts}
    if item.start is not None:
        record["start"] = item.start
    if detail:
        record["detail"] = detail
    return record


# --- the whole run ----------------------------------------------------------------------------------

def find_ffmpeg(configured: Optional[str] = None) -> str:
    """The ffmpeg binary: yt-dlp needs it to merge, cut clips and convert, so check before starting."""
    found = shutil.which(configured or "ffmpeg")
    if found is None:
        raise AvsepError(f"ffmpeg not found ({configured or 'not on PATH'}): install it, e.g. apt install ffmpeg")
    return found


def prepare(out: Path, options: Options) -> tuple[Path, contextlib.ExitStack]:
    """Create OUT, take this shard's lock and clear its stale temporary files."""
    tag = "all" if options.shard[1] == 1 else f"shard-{options.shard[0]}-of-{options.shard[1]}"
    tmp = out / TMP_DIR / tag
    try:
        tmp.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise AvsepError(f"cannot create output folder {out}: {err}") from None
    stack = contextlib.ExitStack()
    stack.enter_context(_exclusive(out / TMP_DIR / f"{tag}.lock", out))
    shutil.rmtree(tmp, ignore_errors=True)  # work in progress of a killed run
    tmp.mkdir(parents=True)
    return tmp, stack


@contextlib.contextmanager
def _exclusive(lock_path: Path, out: Path) -> Iterator[None]:
    """Refuse a second run of the same shard on the same OUT (they would clear each other's files)."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks, trust the user
        yield
        return
    with open(lock_path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise AvsepError(f"another 'avsep download' is already writing to {out} (same shard)") from None
        yield


def adopt(items: Sequence[Item], out: Path, ledger: Ledger) -> tuple[list[Item], list[Item]]:
    """Record files that are on disk without a ledger line (a kill between rename and record).

    Returns (adopted, broken); a file that does not decode is removed and fetched again.
    """
    adopted, broken = [], []
    for item in items:
        path, started = out / item.relpath, time.monotonic()
        try:
            check_playable(path)
        except Exception:  # anything that does not decode is fetched again
            path.unlink(missing_ok=True)
            broken.append(item)
            continue
        record = _record(item, DONE, "found on disk", path.stat().st_size, started, 0)
        ledger.append(**record)
        adopted.append(item)
    return adopted, broken


def run_items(items: Sequence[Item], ctx: Context, ledger: Ledger, on_result=None) -> list[dict[str, Any]]:
    """Process ``items`` with ``ctx.options.workers`` threads; each record is written as soon as it exists.

    Worker threads are daemons fed from a queue, so Ctrl-C returns at once instead of waiting for
    downloads in flight; whatever they leave behind is in OUT/.tmp and cleared on the next start.
    """
    todo: queue.Queue = queue.Queue()
    for item in items:
        todo.put(item)
    results: queue.Queue = queue.Queue()

    def worker() -> None:
        while not ctx.throttle.stop.is_set():
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            try:
                results.put(process(item, ctx))
            except Stopped:
                return
            except BaseException as err:  # a bug must not hang the main loop
                results.put(_record(item, TRANSIENT, f"internal error ({type(err).__name__})", 0,
                                    time.monotonic(), 1, str(err)))

    threads = [threading.Thread(target=worker, daemon=True, name=f"avsep-download-{i}")
               for i in range(max(1, min(ctx.options.workers, len(items))))]
    for thread in threads:
        thread.start()
    records: list[dict[str, Any]] = []
    try:
        while len(records) < len(items):
            try:
                record = results.get(timeout=0.2)
            except queue.Empty:
                if not any(t.is_alive() for t in threads) and results.empty():
                    break
                continue
            ledger.append(**record)
            records.append(record)
            if on_result:
                on_result(record)
    finally:
        ctx.throttle.stop.set()
    return records


def download(items: Sequence[Item], out: str | os.PathLike, options: Optional[Options] = None) -> Summary:
    """Fetch ``items`` into ``out`` (``OUT/<label>/<name>.mp4``), resuming from earlier runs.

    Returns a :class:`~avsep.download.report.Summary` of this run and of everything in ``out``.
    """
    from .report import Progress, Summary  # noqa: F811 (the TYPE_CHECKING import is for annotations only)

    options = dataclasses.replace(options or Options())
    options.ffmpeg = find_ffmpeg(options.ffmpeg)
    out = Path(out)
    tmp, lock = prepare(out, options)
    with lock:
        ledger = Ledger(out / ledger_name(options.shard))
        plan = make_plan(items, out, options.retry_failed)
        adopted, broken = adopt(plan.found, out, ledger)
        todo = plan.todo + broken
        log.info("%d videos selected: %d done before, %d failed before%s, %d to fetch with %d worker(s)",
                 len(items), len(plan.done) + len(adopted), len(plan.failed),
                 " (skipped; --retry-failed tries them again)" if plan.failed else "", len(todo), options.workers)
        stop = threading.Event()
        throttle = Throttle(options.sleep, options.slowdown_after, options.slowdown_pause, options.max_wait, stop)
        backoff = Backoff(options.backoff, options.max_wait)
        ctx = Context(out, tmp, options, throttle, backoff)
        with Progress(len(todo), enabled=options.progress) as progress:
            try:
                records = run_items(todo, ctx, ledger, progress.update)
            finally:
                stop.set()
                shutil.rmtree(tmp, ignore_errors=True)
    return Summary.build(items, read_state(out), records, skipped=len(plan.done) + len(plan.failed))
