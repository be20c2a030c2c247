"""What ``midm data filter`` shows while it runs: one progress bar per step, datatrove's log to a file.

Progress. Each rank's reader (:mod:`data_prep.docio.reader`) records, at most twice a second, how
many bytes of its input files it has consumed and how many documents it has read, in
``OUT/_work/progress/<step>/<rank>.json`` (a file, so it works from datatrove's worker processes,
whose step objects are pickled). :class:`StepProgress` polls those files from the main
process and draws one ``tqdm`` bar per step on stderr: bytes of the step's input done / total (ETA),
with documents and documents/s beside it. Steps that read no documents (MinHash buckets, clusters,
exact-dedup lookups) count finished tasks instead. Bars are drawn only when stderr is a terminal,
unless forced (``force=True``); ``--no-progress`` turns them off.

Log. datatrove (through loguru) prints each task's pipeline, a statistics table per task and per
step: ~440 lines for one small run. :func:`datatrove_log_to_file` sends every line written to
stderr while the steps run to ``OUT/filter.log`` and lets through to the terminal only what may
need the user: loguru records of level WARNING and above, and anything that is not a loguru record
(Python warnings, tracebacks). ``verbose=True`` lets everything through, as before. The per-task
logs datatrove writes itself stay under ``OUT/_work/logs/<step>/logs/``.
"""
from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

LOG_FILE = "filter.log"
_LOGURU = re.compile(r"^(?:\[NODE \d+\] )?\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \| (?P<level>[A-Z]+) *\|")
_QUIET_LEVELS = {"TRACE", "DEBUG", "INFO", "SUCCESS"}
# datatrove warnings about normal states of a run, not problems: a task with no input file (fewer
# files than --tasks) and a MinHash rank that found no near-duplicate to remove
_EXPECTED_WARNINGS = re.compile(r"No files found on .* for rank=\d+|No \.remove file for rank=\d+")


class ReadProgress:
    """Worker side: ``update(bytes_done, docs)`` from a reader, written at most every ``interval`` s."""

    def __init__(self, folder: str | None, rank: int, interval: float = 0.5):
        self.path = Path(folder) / f"{rank:05d}.json" if folder else None
        self.interval = interval
        self._last = 0.0
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def update(self, bytes_done: int, docs: int, final: bool = False) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        if not final and now - self._last < self.interval:
            return
        self._last = now
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"bytes": bytes_done, "docs": docs, "done": final}), encoding="utf-8")
        os.replace(tmp, self.path)


def read_totals(folder: Path) -> tuple[int, int]:
    """(bytes, documents) summed over the ranks' progress files in ``folder`` (0, 0 when none)."""
    nbytes = docs = 0
    for f in folder.glob("*.json"):
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError):  # replaced while read: the next poll sees it
            continue
        nbytes += int(rec.get("bytes", 0))
        docs += int(rec.get("docs", 0))
    return nbytes, docs


def bars_enabled(no_progress: bool, stream: TextIO | None = None, force: bool = False) -> bool:
    """Bars unless ``--no-progress``; only on a terminal unless ``force`` (or ``MIDM_PROGRESS=1``)."""
    if no_progress:
        return False
    return force or os.environ.get("MIDM_PROGRESS") == "1" or bool((stream or sys.stderr).isatty())


class StepProgress:
    """Main-process side: one bar for one step, refreshed from the ranks' progress files.

    ``total_bytes`` is the size of the step's input (files are read once); ``None`` makes the bar count
    finished tasks of ``tasks`` from datatrove's completion markers in ``completions`` instead.
    """

    def __init__(self, name: str, folder: Path, *, total_bytes: int | None, tasks: int, completions: Path,
                 stream: TextIO, enabled: bool, poll_s: float = 0.5):
        self.name, self.folder, self.total_bytes, self.tasks = name, folder, total_bytes, tasks
        self.completions, self.stream, self.enabled, self.poll_s = completions, stream, enabled, poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bar = None
        self._t0 = 0.0

    def __enter__(self) -> "StepProgress":
        if not self.enabled:
            return self
        from tqdm import tqdm

        if self.total_bytes is None:
            self._bar = tqdm(total=self.tasks, desc=self.name, unit="task", file=self.stream, dynamic_ncols=True)
        else:
            self._bar = tqdm(total=self.total_bytes, desc=self.name, unit="B", unit_scale=True, unit_divisor=1024,
                             file=self.stream, dynamic_ncols=True)
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._poll, name=f"progress-{self.name}", daemon=True)
        self._thread.start()
        return self

    def _refresh(self, final: bool = False) -> None:
        bar = self._bar
        if self.total_bytes is None:
            done = len(list(self.completions.glob("*"))) if self.completions.is_dir() else 0
            bar.update(min(done, self.tasks) - bar.n)
            return
        nbytes, docs = read_totals(self.folder)
        target = self.total_bytes if final else min(nbytes, self.total_bytes)
        bar.update(max(0, target - bar.n))
        rate = docs / max(time.monotonic() - self._t0, 1e-6)
        bar.set_postfix_str(f"{docs:,} docs, {rate:,.0f} docs/s", refresh=False)

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_s):
            self._refresh()
            self._bar.refresh()

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._bar is None:
            return
        self._stop.set()
        self._thread.join()
        self._refresh(final=exc_type is None)
        self._bar.close()


class _FilteredStderr:
    """A stderr stand-in: every write goes to the log; to the terminal only what :func:`shown` lets by."""

    def __init__(self, log: TextIO, terminal: TextIO, verbose: bool):
        self.log, self.terminal, self.verbose = log, terminal, verbose
        self._redrawing = False
        self.muted = False  # set by Ctrl-C: the workers' KeyboardInterrupt tracebacks go to the log only

    def write(self, text: str) -> int:
        # a bar some library draws itself (datatrove's "Reading dup files"): "\r…" redraws, then "\n"
        redraw = text.startswith("\r") or (self._redrawing and text == "\n")
        self._redrawing = text.startswith("\r")
        if redraw:
            return len(text)
        self.log.write(text)
        self.log.flush()
        if not self.muted and (self.verbose or shown(text)):
            self.terminal.write(text)
        return len(text)

    def flush(self) -> None:
        self.log.flush()
        self.terminal.flush()

    def isatty(self) -> bool:
        return False  # nothing under this may draw its own bars

    def fileno(self) -> int:
        return self.terminal.fileno()


def shown(text: str) -> bool:
    """Whether a chunk written to stderr reaches the terminal without ``--verbose``: loguru records of
    level WARNING and above (but for two that describe normal runs), and everything that is not a
    loguru record."""
    m = _LOGURU.match(text)
    if m is None:
        return True
    return m.group("level") not in _QUIET_LEVELS and not _EXPECTED_WARNINGS.search(text)


@contextmanager
def datatrove_log_to_file(log_path: Path, verbose: bool) -> Iterator[TextIO]:
    """Route stderr through :class:`_FilteredStderr` (appending to ``log_path``) for the block; yields the
    real stderr, where the progress bars go.

    datatrove re-adds a loguru sink on ``sys.stderr`` for every task (``add_task_logger``) and after it
    (``setup_default_logger``); both look ``sys.stderr`` up when they run, so they land here. A worker
    process (started from a forkserver: it does not inherit this) enters the same block around its task
    (:class:`data_prep.local_exec.MidmLocalExecutor`).
    """
    from datatrove.utils.logging import logger, setup_default_logger  # datatrove's loguru logger

    real = sys.stderr
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8", buffering=1) as log:
        filtered = _FilteredStderr(log, real, verbose)

        def interrupted(signum, frame):  # installed in each worker too (its own block): each mutes its own copy
            filtered.muted = True
            raise KeyboardInterrupt

        sys.stderr = filtered
        previous = signal.signal(signal.SIGINT, interrupted) if _main_thread() else None
        setup_default_logger()  # the sink datatrove added at import still points at the real stderr
        try:
            yield real
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            logger.complete()
            sys.stderr = real
            setup_default_logger()


def stderr_is_routed() -> bool:
    """Whether this process's stderr already goes through :func:`datatrove_log_to_file`."""
    return isinstance(sys.stderr, _FilteredStderr)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
