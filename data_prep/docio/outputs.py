"""Output locations of the data commands: refused early when unusable, removed when the start fails.

``midm data filter`` / ``tokenize`` create ``OUT`` (or ``OUT_PREFIX.shards/``) before they run. When
the start fails — an input of the wrong format, a bad tokenizer, a config error — what they made is
removed again, so a failed start leaves no half-made output behind (an output that existed before
is left as it was: it may hold a resumable run).
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from data_prep.errors import DataError


def check_output_dir(path: str | Path, what: str = "output") -> Path:
    """``path`` resolved; raises :class:`DataError` when it, or the nearest existing folder above it,
    is not a directory (so ``mkdir`` would fail with a traceback)."""
    p = Path(path).resolve()
    if p.exists() and not p.is_dir():
        raise DataError(f"{what} {path} exists and is not a directory")
    parent = p
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise DataError(f"{what} {path}: {parent} is a file, not a directory")
    return p


@contextmanager
def removed_if_start_fails(path: str | Path) -> Iterator[Path]:
    """Run the start of a command that creates ``path``; on any exception (or Ctrl-C) inside the
    block, delete the topmost folder of ``path`` that did not exist before, then re-raise."""
    p = check_output_dir(path)
    top = None
    for candidate in [p, *p.parents]:
        if candidate.exists():
            break
        top = candidate
    try:
        yield p
    except BaseException:
        if top is not None:
            shutil.rmtree(top, ignore_errors=True)
        raise


@contextmanager
def staged_dir(out: str | Path) -> Iterator[Path]:
    """A fresh ``.OUT.tmp-<pid>`` folder beside ``out`` to write a whole output into: when the block
    ends normally it replaces ``out`` (a previous output of the same command, which the caller has
    checked) by one rename, so readers see the old output or the new one, never a mix; on any
    exception (or Ctrl-C) it is removed and ``out`` is left as it was."""
    out = Path(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
