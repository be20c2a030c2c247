"""What an input path means: files named directly, directories walked — and a stage's output
directory read as the documents it kept, never as its rejects or intermediates.

``midm data filter`` (and ``dedup``/``pii``, the same command) writes, next to the kept shards
``OUT/{rank}.jsonl.gz``, ``OUT/rejects/…`` and ``OUT/_work/…`` — JSON Lines too. So every stage
output carries :data:`MANIFEST` (``OUT/midm_output.json``): written as *incomplete* when the run
starts, replaced (atomically) by the list of kept files when it finishes. Every reader of a
directory — ``midm data filter|tokenize``, ``midm tokenizer train|eval`` — goes through
:func:`expand_inputs`, which takes a directory holding a manifest (at any depth of a walk) as
exactly its kept files, and refuses an unfinished one.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from data_prep.errors import DataError

MANIFEST = "midm_output.json"
MANIFEST_KIND = "midm stage output"
JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")


def write_manifest(out_dir: str | Path, stage: str, kept_files: list[str] | None, **extra) -> Path:
    """Write ``OUT/midm_output.json``; ``kept_files=None`` marks a run in progress (tmp + rename)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = {"kind": MANIFEST_KIND, "stage": stage, "complete": kept_files is not None,
              "kept_files": sorted(kept_files or []), **extra}
    tmp = out / f".{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, out / MANIFEST)
    return out / MANIFEST


def read_manifest(directory: Path) -> dict | None:
    """The directory's manifest if it has one of ours (a foreign ``midm_output.json`` is ignored)."""
    path = directory / MANIFEST
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: unreadable stage manifest ({err}); re-run the stage that wrote {directory}") from None
    return record if isinstance(record, dict) and record.get("kind") == MANIFEST_KIND else None


def kept_files(directory: Path, record: dict) -> list[Path]:
    if not record.get("complete"):
        raise DataError(f"{directory} is the output of an unfinished `midm data {record.get('stage', 'filter')}` "
                        f"run ({MANIFEST} says incomplete): finish it (re-running resumes) before reading it")
    files = [directory / name for name in record.get("kept_files", [])]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise DataError(f"{directory}: {len(missing)} kept file(s) listed in {MANIFEST} are missing "
                        f"(first: {missing[0]}); re-run the stage")
    return files


def _walk(directory: Path, suffixes: tuple[str, ...], exclude: Path | None) -> list[Path]:
    record = read_manifest(directory)
    if record is not None:
        return kept_files(directory, record)
    found: list[Path] = []
    for child in sorted(directory.iterdir()):
        if child.name.startswith("."):
            continue
        if child.is_dir():
            if exclude is None or child.resolve() != exclude:
                found += _walk(child, suffixes, exclude)
        elif child.is_file() and child.name.lower().endswith(suffixes):
            found.append(child)
    return found


def expand_inputs(paths: Iterable[str | os.PathLike], suffixes: tuple[str, ...] = JSONL_SUFFIXES,
                  exclude: str | os.PathLike | None = None) -> list[Path]:
    """Input files in a stable order: files as given, directories walked (sorted, hidden names
    skipped, only ``suffixes``), a stage output directory as its kept files only. ``exclude`` (the
    command's own output directory, when it lies inside an input directory) is never walked.

    Raises :class:`DataError` for a missing path, a directory with no such files, or an
    unfinished stage output.
    """
    skip = Path(exclude).resolve() if exclude is not None else None
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = _walk(p, suffixes, skip)
            if not found and read_manifest(p) is None:
                raise DataError(f"{p}: directory has no {' / '.join(suffixes)} files")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"{p}: no such file or directory")
    return files
