"""Output locations of the data commands: refused early when unusable, removed when the start fails,
resumed only by the same run.

``midm data filter`` / ``tokenize`` create ``OUT`` (or ``OUT_PREFIX.shards/``) before they run. When
the start fails — an input of the wrong format, a bad tokenizer, a config error — what they made is
removed again, so a failed start leaves no half-made output behind (an output that existed before
is left as it was: it may hold a resumable run). ``midm data filter`` resumes a run in ``OUT`` only
when it was started with the same inputs and settings (``OUT/_work/run.json``); otherwise it stops
with exit 2 and says to add ``--fresh`` or choose another ``OUT``.
"""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from data_prep.config import ALL_STAGES
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


RUN_RECORD = "run.json"  # OUT/_work/run.json: what a resumable run was started with


def run_record(inputs: list[str], sources: list, cfg: dict, keep_rejects: bool) -> dict:
    """What decides a filter run's result: every input file with its size, mtime and format (with
    ``--format hub``, the dataset ids as given), the merged config (stages, tasks, every setting) and
    ``--keep-rejects``. ``sources``: the inputs expanded (:class:`data_prep.docio.sources.Source`)."""
    if (cfg["io"].get("format") or "auto") == "hub":
        files: list = list(inputs)
    else:
        files = []
        for s in sources:
            st = Path(s.path).stat()
            files.append([str(Path(s.path).resolve()), st.st_size, st.st_mtime_ns, s.format])
    return {"inputs": files, "config": json.loads(json.dumps(cfg, sort_keys=True, default=str)),
            "keep_rejects": bool(keep_rejects)}


def check_same_run(work: Path, record: dict, out: str | Path) -> None:
    """Raise :class:`DataError` when ``work`` holds the record of a run started differently: resuming
    it would keep that run's finished tasks (and report their counts) under the new inputs/settings.
    No record (a new OUT, or one from before records were kept) passes."""
    path = Path(work) / RUN_RECORD
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        old = {}
    old, record = _comparable(old), _comparable(record)
    if old == record:
        return
    differ = [] if old.get("inputs") == record["inputs"] else [
        f"inputs ({_inputs_diff(old.get('inputs'), record['inputs'])})"]
    old_cfg, cfg = old.get("config") or {}, record["config"]
    one_run_only = set(old_cfg) ^ set(cfg)  # sections of stages only one of the runs enables: `stages` says it
    for key in sorted(set(old_cfg) | set(cfg)):
        if key in ALL_STAGES and key in one_run_only:
            continue
        a, b = old_cfg.get(key), cfg.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            differ += [f"{key}.{k}{_change(a.get(k), b.get(k))}" for k in sorted(set(a) | set(b))
                       if a.get(k) != b.get(k)]
        elif a != b:
            differ.append(f"{key}{_change(a, b)}")
    if old.get("keep_rejects") != record["keep_rejects"]:
        differ.append("--keep-rejects")
    raise DataError(f"{out} holds a run started with different {', '.join(differ) or 'settings'}: resuming it "
                    f"would keep that run's finished tasks and counts. Add --fresh to start over, or choose another OUT")


def _comparable(record: dict) -> dict:
    """``record`` without what cannot change the result: the settings of stages the run does not enable
    (each stage reads its own section only), and ``io.format`` of file inputs (each file's resolved format
    is in ``inputs``, so ``--format jsonl`` and ``auto`` reading the same .jsonl are one run)."""
    cfg = record.get("config")
    if not isinstance(cfg, dict):
        return record
    stages = cfg.get("stages") if isinstance(cfg.get("stages"), list) else ALL_STAGES
    cfg = {k: v for k, v in cfg.items() if k not in ALL_STAGES or k in stages}
    io = cfg.get("io")
    if isinstance(io, dict) and (io.get("format") or "auto") != "hub":
        cfg["io"] = {k: v for k, v in io.items() if k != "format"}
    return {**record, "config": cfg}


def _change(a, b, limit: int = 80) -> str:
    """`` (A → B)`` for two settings short enough to print (values, stage lists), else nothing."""
    a, b = json.dumps(a, ensure_ascii=False), json.dumps(b, ensure_ascii=False)
    return f" ({a} → {b})" if len(a) + len(b) <= limit else ""


def _inputs_diff(old: list | None, new: list, show: int = 3) -> str:
    """Which inputs differ between two run records, for the refusal: new ones, ones no longer given, and
    files whose size, modification time or format changed (at most ``show`` names of each)."""
    def by_name(entries: list | None) -> dict:
        return {(e[0] if isinstance(e, list) and e else str(e)): e for e in entries or []}

    before, now = by_name(old), by_name(new)
    parts = []
    for label, names in (("new", [n for n in now if n not in before]),
                         ("no longer given", [n for n in before if n not in now]),
                         ("size, modification time or format changed",
                          [n for n in now if n in before and before[n] != now[n]])):
        if names:
            more = f" and {len(names) - show} more" if len(names) > show else ""
            parts.append(f"{label}: " + ", ".join(names[:show]) + more)
    return "; ".join(parts) or "their order"


def write_run_record(work: Path, record: dict) -> None:
    """``work/run.json`` (tmp + rename)."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    tmp = work / f".{RUN_RECORD}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, work / RUN_RECORD)
