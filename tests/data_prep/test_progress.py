"""What reaches the terminal during `midm data filter`: datatrove's INFO records go only to OUT/filter.log;
its warnings and errors, and anything else (Python warnings, tracebacks), still print. Bars only on a
terminal unless forced."""
from __future__ import annotations

import io

from data_prep.progress import _FilteredStderr, bars_enabled, shown

INFO = "2026-11-30 19:08:24.339 | INFO     | datatrove.executor.base:_run_for_rank:147 - \n\n📉📉📉 Stats: Task 0\n"
WARN = "2026-11-30 19:08:24.339 | WARNING  | datatrove.pipeline.readers.base:read_file:80 - file vanished\n"


def test_info_goes_to_the_log_warnings_and_foreign_text_to_the_terminal():
    assert not shown(INFO) and not shown(INFO.replace("INFO    ", "SUCCESS ")) and shown(WARN)
    assert shown("/x.py:3: UserWarning: something new\n  warnings.warn(\n") and shown("Traceback (most recent …\n")
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

