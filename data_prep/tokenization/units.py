"""Work units of ``midm data tokenize`` and the texts inside them.

A unit is ``(file, start, end, format)``: a byte range of a plain JSONL file ending on a line
boundary (workers seek there themselves, so no text travels between processes), or a whole gzip,
WARC or Parquet file (``end`` is None: a compressed stream cannot be entered in the middle). A Hub
dataset (``--format hub``) is split into ``parts`` streams, one unit each:
``(dataset id, part, parts, "hub", config, split)`` (``datasets.distributed.split_dataset_by_node``).
JSONL texts are read through :mod:`data_prep.docio.records`, WARC (HTML responses → main text)
and Parquet through :mod:`data_prep.docio.sources`: a damaged or unusable record is counted by
reason and skipped, the same reasons as in ``midm data filter``'s ``input`` stage.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson

from data_prep.docio.records import is_gzip, iter_lines, parse_record
from data_prep.docio.sources import Source, check_source, expand_sources, iter_source_records

Unit = tuple  # (path, start, end, format) or (dataset id, part, parts, "hub", config, split)


def input_sources(paths: str | list[str], text_key: str = "text", fmt: str = "auto",
                  hub_config: str | None = None, hub_split: str | None = None) -> list[Source]:
    """The inputs behind each IN, in the order given (a stage output directory: its kept files), with
    their formats, each checked (a Hub dataset: loaded, its ``text_key`` column checked).

    Raises :class:`DataError` naming the format expected for a file that is not of its format, or
    saying why a Hub dataset cannot be loaded.
    """
    sources = expand_sources([paths] if isinstance(paths, str) else list(paths), fmt)
    for source in sources:
        check_source(source, text_key, hub_config, hub_split or "train")
    return sources


def input_files(paths: str | list[str], text_key: str = "text") -> list[Path]:
    """The JSON Lines files behind each IN, in the order given, each sniffed (the files of
    :func:`input_sources`)."""
    return [Path(s.path) for s in input_sources(paths, text_key, "jsonl")]


def _whole(source: Source) -> bool:
    return source.format != "jsonl" or is_gzip(source.path)


def unit_size(sources: list[Source], shard_bytes: int, workers: int) -> int:
    """Bytes per unit: ``--shard-mb``, but small enough that every worker gets units to do (four per
    worker when the plain input allows it; 1 MB at least)."""
    plain = sum(Path(s.path).stat().st_size for s in sources if not _whole(s))
    return max(1, min(shard_bytes, max(1 << 20, plain // (4 * max(1, workers)))))


def plan_units(sources: list[Source], shard_bytes: int, hub_parts: int = 1, hub_config: str | None = None,
               hub_split: str | None = None) -> list[Unit]:
    """(file, start, end, format): byte ranges of plain JSONL ending on line boundaries; gzip, WARC
    and Parquet files are one unit each; a Hub dataset ``hub_parts`` units (one stream each)."""
    units: list[Unit] = []
    for source in sources:
        if source.format == "hub":
            parts = max(1, hub_parts)
            units += [(source.path, k, parts, "hub", hub_config, hub_split or "train") for k in range(parts)]
            continue
        f = Path(source.path)
        if _whole(source):
            units.append((str(f), 0, None, source.format))
            continue
        size, pos = f.stat().st_size, 0
        with open(f, "rb") as fh:
            while pos < size:
                end = min(size, pos + shard_bytes)
                if end < size:
                    fh.seek(end)
                    fh.readline()
                    end = fh.tell()
                units.append((str(f), pos, end, "jsonl"))
                pos = end
    return units


def unit_bytes(unit: Unit) -> int:
    """Input bytes of a unit (compressed bytes for gzip): the progress bar's measure; 0 for a Hub
    stream (its size is not known up front)."""
    path, start, end, fmt = unit[:4]
    if fmt == "hub":
        return 0
    return (Path(path).stat().st_size if end is None else end) - start


def iter_unit_texts(unit: Unit, key: str, counts: Counter, max_line_bytes: int | None = None,
                    on_position: Callable[[int], None] | None = None) -> Iterator[str]:
    """Texts of one unit; every record that cannot be used is counted in ``counts`` by reason.

    ``on_position(bytes_read)`` is called as the raw file is consumed (progress reporting, every
    few thousand lines). The common case — a JSON object with a non-blank string ``key`` — is
    decided inline; anything else goes through :func:`parse_record` for its reason.
    """
    path, start, end, fmt = unit[:4]
    if fmt == "hub":
        from data_prep.docio.tables import iter_hub

        hub_config, hub_split = unit[4:6]
        for record in iter_hub(path, counts, hub_config, hub_split, key, rank=start, world_size=end):
            yield record["text"]
        return
    if fmt != "jsonl":
        yield from _other_texts(path, fmt, key, counts, max_line_bytes, on_position)
        return
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


def _other_texts(path: str, fmt: str, key: str, counts: Counter, max_bytes: int | None,
                 on_position: Callable[[int], None] | None) -> Iterator[str]:
    """Texts of a WARC or Parquet file (progress: the whole file's bytes, at its end)."""
    for record in iter_source_records(Source(path, fmt), counts, text_key=key,
                                      max_bytes=min(max_bytes or 4_000_000, 4_000_000)):
        yield record["text"]
    if on_position is not None:
        on_position(Path(path).stat().st_size)
