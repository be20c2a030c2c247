"""Input formats of every data command: which format a path is, whether it really is, its records.

``--format {auto,jsonl,warc,parquet,hub}`` (``midm data filter|dedup|pii|tokenize``):

* ``auto`` — by extension: ``.jsonl``/``.jsonl.gz`` → jsonl, ``.warc``/``.warc.gz``/``.wet.gz``
  → warc, ``.parquet`` → parquet; any other name by its first bytes (``PAR1`` → parquet, a WARC
  header, plain or gzip → warc, else jsonl, whose check then names what the file is). Directories
  are walked for those extensions; a ``midm data filter`` output directory means its kept
  JSONL shards (:mod:`data_prep.docio.inputs`) whatever ``--format`` says.
* ``jsonl`` / ``warc`` / ``parquet`` — every file named or found (directories: that format's
  extensions) is read as that format.
* ``hub`` — each input is a Hugging Face dataset id (online) or a local directory in the Hub
  layout (offline), read with 🤗 ``datasets`` (:mod:`data_prep.docio.tables`). Without
  ``--format hub`` a path that does not exist is an error, never a Hub download.

Every format reports to the same counters (``records``, ``dropped:<reason>``), so the filter's
``input`` stage and ``midm data tokenize`` account for each record the same way.
"""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from data_prep.docio.inputs import JSONL_SUFFIXES, expand_inputs, read_manifest
from data_prep.docio.records import GZIP_MAGIC, JSONL_FORMAT, iter_records, sniff_jsonl
from data_prep.errors import DataError

FORMATS = ("auto", "jsonl", "warc", "parquet", "hub")
SUFFIXES = {"jsonl": JSONL_SUFFIXES, "warc": (".warc", ".warc.gz", ".wet", ".wet.gz"), "parquet": (".parquet",)}
ALL_SUFFIXES = tuple(s for group in SUFFIXES.values() for s in group)
EXPECTED = {"jsonl": JSONL_FORMAT, "warc": "WARC records (.warc, or .warc.gz compressed record by record)",
            "parquet": "Parquet with a string column {key!r}"}


@dataclass(frozen=True)
class Source:
    """One input: a file path (or, for ``hub``, a dataset id / Hub-layout directory) and its format."""

    path: str
    format: str


def _by_content(path: Path) -> str:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(GZIP_MAGIC):
        import zlib

        try:
            head = zlib.decompressobj(wbits=31).decompress(head, 16)
        except zlib.error:
            return "jsonl"
    return "warc" if head.lstrip().startswith(b"WARC/") else "jsonl"


def format_of(path: Path, fmt: str = "auto") -> str:
    """The format a file is read as: ``fmt`` unless ``auto`` (then by extension, else by content)."""
    if fmt != "auto":
        return fmt
    name = path.name.lower()
    for kind, suffixes in SUFFIXES.items():
        if name.endswith(suffixes):
            return kind
    return _by_content(path)


def expand_sources(paths: Iterable[str | os.PathLike], fmt: str = "auto",
                   exclude: str | os.PathLike | None = None) -> list[Source]:
    """Inputs as :class:`Source` in a stable order (see the module doc).

    Raises :class:`DataError` for an unknown ``fmt``, a missing path (naming ``--format hub`` when
    it looks like a Hub id), a directory without files of the format, or an unfinished stage output.
    """
    if fmt not in FORMATS:
        raise DataError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    paths = [str(p) for p in paths]
    if fmt == "hub":
        return [Source(p, "hub") for p in paths]
    suffixes = ALL_SUFFIXES if fmt == "auto" else SUFFIXES[fmt]
    out: list[Source] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists() and raw.count("/") == 1 and not raw.startswith((".", "/")) and not p.suffix:
            raise DataError(f"{raw}: no such file or directory (to read the Hugging Face dataset {raw!r}, "
                            f"add --format hub)")
        manifest = p.is_dir() and read_manifest(p) is not None
        files = expand_inputs([p], suffixes=JSONL_SUFFIXES if manifest else suffixes, exclude=exclude)
        out += [Source(str(f), "jsonl" if manifest else format_of(f, fmt)) for f in files]
    return out


def check_source(source: Source, text_key: str = "text", hub_config: str | None = None,
                 hub_split: str = "train") -> None:
    """Raise :class:`DataError` (one line: the format expected and what was found) unless the
    source reads as its format. Damaged records inside are counted later, not refused here."""
    if source.format == "hub":
        from data_prep.docio.tables import load_hub

        load_hub(source.path, hub_config, hub_split, text_key)
        return
    if source.format == "jsonl":
        problem = sniff_jsonl(source.path, text_key)
    elif source.format == "warc":
        from data_prep.docio.warc import sniff_warc

        problem = sniff_warc(source.path)
    else:
        from data_prep.docio.tables import parquet_problem

        problem = parquet_problem(source.path, text_key)
    if problem:
        raise DataError(f"{source.path}: expected {EXPECTED[source.format].format(key=text_key)}; found {problem} "
                        f"(--format picks the reader: {', '.join(FORMATS)})")


def iter_source_records(source: Source, counts: Counter, text_key: str = "text", max_bytes: int = 4_000_000,
                        hub_config: str | None = None, hub_split: str = "train", rank: int = 0,
                        world_size: int = 1, on_position: Callable[[int], None] | None = None) -> Iterator[dict]:
    """Records ``{"id"?, "text", **metadata}`` of one source; ``counts['records']`` and
    ``counts['dropped:<reason>']`` (plus informational counters) updated as it goes.

    ``rank``/``world_size`` split a Hub stream between tasks (files are split by the caller).
    ``on_position(bytes)`` hears, for WARC and Parquet files, how far into the file reading has got
    (progress bars; Parquet: the file size × the fraction of rows read).
    For jsonl the record is returned as written (its ``text_key`` field is the text).
    """
    if source.format == "jsonl":
        inner: Counter = Counter()
        for record in iter_records(source.path, text_key, inner):
            counts["records"] += 1
            yield record
        dropped = sum(v for k, v in inner.items() if k.startswith("dropped:"))
        counts["records"] += dropped
        counts.update(inner)
    elif source.format == "warc":
        from data_prep.docio.warc import iter_warc

        yield from iter_warc(source.path, counts, max_bytes, on_position)
    elif source.format == "parquet":
        from data_prep.docio.tables import iter_parquet

        yield from iter_parquet(source.path, counts, text_key, on_position)
    elif source.format == "hub":
        from data_prep.docio.tables import iter_hub

        yield from iter_hub(source.path, counts, hub_config, hub_split, text_key, rank, world_size)
    else:
        raise DataError(f"unknown input format {source.format!r}")
