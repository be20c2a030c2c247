"""Work units of ``midm data tokenize`` and the texts inside them.

A unit is ``(file, start, end)``: a byte range of a plain JSONL file ending on a line boundary
(workers seek there themselves, so no text travels between processes), or a whole gzip file
(``end`` is None: a compressed stream cannot be entered in the middle). Texts are read through
:mod:`data_prep.docio.records`: a damaged record or gzip member is counted by reason and skipped.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from data_prep.docio.inputs import expand_inputs
from data_prep.docio.records import JSONL_FORMAT, is_gzip, iter_lines, parse_record, sniff_jsonl
from data_prep.errors import DataError

Unit = tuple[str, int, "int | None"]


def input_files(paths: str | list[str], text_key: str = "text") -> list[Path]:
    """The JSON Lines files behind each IN, in the order given (a stage output directory: its kept
    files), each sniffed.

    Raises :class:`DataError` for a missing path and, naming the format expected, for a file that is
    not JSON Lines.
    """
    files = expand_inputs([paths] if isinstance(paths, str) else list(paths))
    for f in files:
        problem = sniff_jsonl(f, text_key)
        if problem:
            raise DataError(f"{f}: expected {JSONL_FORMAT.format(key=text_key)}; found {problem}")
    return files


def unit_size(files: list[Path], shard_bytes: int, workers: int) -> int:
    """Bytes per unit: ``--shard-mb``, but small enough that every worker gets units to do (four per
    worker when the plain input allows it; 1 MB at least)."""
    plain = sum(f.stat().st_size for f in files if not is_gzip(f))
    return max(1, min(shard_bytes, max(1 << 20, plain // (4 * max(1, workers)))))


def plan_units(files: list[Path], shard_bytes: int) -> list[Unit]:
    """(file, start, end) byte ranges ending on line boundaries; gzip files are one unit."""
    units: list[Unit] = []
    for f in files:
        if is_gzip(f):
            units.append((str(f), 0, None))
            continue
        size, pos = f.stat().st_size, 0
        with open(f, "rb") as fh:
            while pos < size:
                end = min(size, pos + shard_bytes)
                if end < size:
                    fh.seek(end)
                    fh.readline()
                    end = fh.tell()
                units.append((str(f), pos, end))
                pos = end
    return units


def unit_bytes(unit: Unit) -> int:
    """Input bytes of a unit (compressed bytes for gzip): the progress bar's measure."""
    path, start, end = unit
    return (Path(path).stat().st_size if end is None else end) - start


def iter_unit_texts(unit: Unit, key: str, counts: Counter, max_line_bytes: int | None = None,
                    on_position: Callable[[int], None] | None = None) -> Iterator[str]:
    """Texts of one unit; every record that cannot be used is counted in ``counts`` by reason.

    ``on_position(bytes_read)`` is called as the raw file is consumed (progress reporting, every
    few thousand lines). The common case — a JSON object with a non-blank string ``key`` — is
    decided inline; anything else goes through :func:`parse_record` for its reason.
    """
    path, start, end = unit
    records = 0
    reported = 0
    with open(path, "rb") as fh:
        lines = iter_lines(fh, gzip=end is None, start=start, end=end, max_line_bytes=max_line_bytes, stats=counts)
        for n, raw in enumerate(lines):
            if on_position is not None and n % 4096 == 0:
                pos = fh.tell() - start
                on_position(pos - reported)
                reported = pos
            if raw is None:
                records += 1
                counts["dropped:too_large"] += 1
                continue
            if not raw or raw.isspace():
                continue
            records += 1
            try:
                data = orjson.loads(raw)
                text = data.get(key) if type(data) is dict else None
            except orjson.JSONDecodeError:
                text = None
            if type(text) is str and text and not text.isspace():
                yield text
                continue
            record, reason = parse_record(raw, key)
            if record is None:
                counts[f"dropped:{reason}"] += 1
            else:  # the standard library took what orjson refused (a big integer field, say)
                yield record[key]
        if on_position is not None:
            on_position(fh.tell() - start - reported)
    counts["records"] += records
