"""What reaches the terminal during `midm data filter`: datatrove's INFO records go only to OUT/filter.log;
its warnings and errors, and anything else (Python warnings, tracebacks), still print. Bars only on a
terminal unless forced."""
from __future__ import annotations

import io
import json
import subprocess
import sys

from data_prep.progress import _FilteredStderr, bars_enabled, shown
from tests.conftest import REPO

INFO = "2026-11-30 19:08:24.339 | INFO     | datatrove.executor.base:_run_for_rank:147 - \n\n📉📉📉 Stats: Task 0\n"
WARN = "2026-11-30 19:08:24.339 | WARNING  | datatrove.pipeline.readers.base:read_file:80 - file vanished\n"


def test_info_goes_to_the_log_warnings_and_foreign_text_to_the_terminal():
    assert not shown(INFO) and not shown(INFO.replace("INFO    ", "SUCCESS ")) and shown(WARN)
    assert shown("/x.py:3: UserWarning: something new\n  warnings.warn(\n") and shown("Traceback (most recent …\n")
    # warnings about normal runs: a rank without an input file, a MinHash rank with nothing to remove
    assert not shown(WARN.replace("file vanished", "No files found on / for rank=1"))
    assert not shown(WARN.replace("file vanished", "No .remove file for rank=0."))
    log, term = io.StringIO(), io.StringIO()
    err = _FilteredStderr(log, term, verbose=False)
    for text in (INFO, WARN, "\rReading dup files: 50%", "\rReading dup files: 100%", "\n", "a new warning\n"):
        err.write(text)
    assert term.getvalue() == WARN + "a new warning\n"
    assert log.getvalue() == INFO + WARN + "a new warning\n"
    verbose_term = io.StringIO()
    _FilteredStderr(io.StringIO(), verbose_term, verbose=True).write(INFO)
    assert verbose_term.getvalue() == INFO


def test_bars_only_on_a_terminal_unless_forced(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.delenv("MIDM_PROGRESS", raising=False)
    assert bars_enabled(False, Tty()) and not bars_enabled(False, io.StringIO()) and not bars_enabled(True, Tty())
    assert bars_enabled(False, io.StringIO(), force=True)
    monkeypatch.setenv("MIDM_PROGRESS", "1")
    assert bars_enabled(False, io.StringIO()) and not bars_enabled(True, io.StringIO())



def test_worker_processes_log_like_the_command(tmp_path):
    """Two workers (forkserver processes, which do not inherit the command's stderr): datatrove's INFO
    records go to OUT/filter.log, none to the terminal."""
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"text": f"문서 {i}번째 내용입니다. 같은 문장이 아닙니다 {i * 7}."}, ensure_ascii=False) + "\n"
                           for i in range(40)), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "midm", "data", "filter", str(inp), str(tmp_path / "out"),
                           "--tasks", "2", "--workers", "2", "--stages", "dedup"], capture_output=True, text=True,
                          cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr
    log = (tmp_path / "out" / "filter.log").read_text(encoding="utf-8")
    # logged by the worker processes after each task (datatrove's _launch_run_for_rank)
    assert "1/2 tasks completed." in log and "2/2 tasks completed." in log
