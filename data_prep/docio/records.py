"""Records out of JSON Lines files, for every data command: one damaged record never ends a run.

Shared by ``midm data filter`` (through :class:`data_prep.docio.reader.RobustJsonlReader`),
``midm data tokenize`` and ``midm tokenizer train|eval``. A file is read as bytes, in blocks, and
each layer that can be damaged costs only what it damaged:

* the compressed stream — a gzip member that fails to inflate (``zlib.error``: bad block type,
  bad CRC …) is skipped up to the next member header (``damaged_gzip_member``; the line cut in
  two by the damage is lost with it); a stream cut short keeps every complete line before the
  cut (``truncated_gzip``). Multi-member files (``cat a.gz b.gz``) are read whole.
* the bytes — a line longer than ``max_line_bytes`` is skipped without being held in memory
  (``too_large``); a line that is not UTF-8 is ``invalid_utf8``.
* the JSON — not JSON, or nested deeper than the parser allows: ``bad_json``; not an object
  or without a string ``text``: ``missing_text``.
* the text inside the JSON — escaped lone surrogates (``"\\ud800"``: valid JSON, but no UTF-8
  writer or tokenizer can take them): ``invalid_unicode``; whitespace only: ``empty``.

Whether the file is JSON Lines at all is a separate, up-front question (:func:`sniff_jsonl`): a
run over plain text, a zstd file or a JSON array fails with a message naming the format
expected instead of counting every line as ``bad_json``.
"""
from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import orjson

GZIP_MAGIC = b"\x1f\x8b\x08"
BLOCK_BYTES = 1 << 20
INFLATED_BYTES = 8 << 20  # at most this much inflated at once (a gzip bomb stays bounded)
JSONL_FORMAT = ("JSON Lines: one JSON object per line with a string field {key!r} "
                "(.jsonl, or .jsonl.gz compressed with gzip)")
_OTHER_FORMATS = ((b"\x28\xb5\x2f\xfd", "zstd-compressed data"), (b"BZh", "bzip2-compressed data"),
                  (b"\xfd7zXZ\x00", "xz-compressed data"), (b"PK\x03\x04", "a zip archive"),
                  (b"PAR1", "a Parquet file"), (b"\x04\x22\x4d\x18", "lz4-compressed data"))
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def is_gzip(path: str | Path) -> bool:
    """By content, not by name: a ``.jsonl`` that is gzip, or a ``.gz`` that is not, reads right."""
    with open(path, "rb") as fh:
        return fh.read(3) == GZIP_MAGIC


def next_gzip_member(fh: BinaryIO, data: bytes) -> bytes:
    """Bytes from the next gzip member header on (empty at end of file)."""
    while True:
        at = data.find(GZIP_MAGIC)
        if at >= 0:
            return data[at:]
        more = fh.read(BLOCK_BYTES)
        if not more:
            return b""
        data = data[-(len(GZIP_MAGIC) - 1):] + more


def _gzip_blocks(fh: BinaryIO, stats: Counter) -> Iterator[bytes | None]:
    """Inflated bytes of every readable member; ``None`` marks a break (the partial line is lost)."""
    inflater = zlib.decompressobj(wbits=31)
    pending = b""
    in_member = False
    while True:
        if not pending:
            pending = fh.read(BLOCK_BYTES)
            if not pending:
                break
        if not in_member:
            pending = pending.lstrip(b"\x00")  # zero padding between/after members is allowed
            if not pending:
                continue
        try:
            out = inflater.decompress(pending, INFLATED_BYTES)
        except zlib.error:
            stats["damaged_gzip_member"] += 1
            yield None
            pending = next_gzip_member(fh, pending[1:])
            inflater, in_member = zlib.decompressobj(wbits=31), False
            continue
        in_member = True
        if out:
            yield out
        if inflater.eof:
            pending = inflater.unused_data
            inflater, in_member = zlib.decompressobj(wbits=31), False
        else:
            pending = inflater.unconsumed_tail
    if in_member:
        stats["truncated_gzip"] += 1
        yield None


def _plain_blocks(fh: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
    fh.seek(start)
    left = None if end is None else end - start
    while left is None or left > 0:
        block = fh.read(BLOCK_BYTES if left is None else min(BLOCK_BYTES, left))
        if not block:
            return
        if left is not None:
            left -= len(block)
        yield block


def split_lines(blocks: Iterator[bytes | None], max_line_bytes: int | None,
                stats: Counter) -> Iterator[bytes | None]:
    """Lines (without ``\\n``) of a block stream; ``None`` for a line over ``max_line_bytes``."""
    frag: list[bytes] = []
    frag_len = 0
    skipping = False  # inside an over-long line: drop bytes until its end
    for block in blocks:
        if block is None:
            if frag_len or skipping:
                stats["partial_lines_lost"] += 1
            frag, frag_len, skipping = [], 0, False
            continue
        parts = block.split(b"\n")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if skipping:
                if not last:
                    skipping = False
                    yield None
                continue
            if last:
                frag.append(part)
                frag_len += len(part)
                if max_line_bytes and frag_len > max_line_bytes:
                    frag, frag_len, skipping = [], 0, True
                continue
            line = b"".join(frag) + part if frag else part
            frag, frag_len = [], 0
            yield None if max_line_bytes and len(line) > max_line_bytes else line
    if skipping:
        yield None
    elif frag_len:
        line = b"".join(frag)
        yield None if max_line_bytes and len(line) > max_line_bytes else line


def iter_lines(fh: BinaryIO, *, gzip: bool, start: int = 0, end: int | None = None,
               max_line_bytes: int | None = None, stats: Counter | None = None) -> Iterator[bytes | None]:
    """Lines of an open binary file (gzip or plain; plain may be a byte range ``[start, end)``).

    Yields ``bytes`` per line and ``None`` per line skipped as too large; damage to the gzip
    stream is counted in ``stats`` (``damaged_gzip_member``, ``truncated_gzip``) and never raised.
    """
    stats = Counter() if stats is None else stats
    blocks = _gzip_blocks(fh, stats) if gzip else _plain_blocks(fh, start, end)
    yield from split_lines(blocks, max_line_bytes, stats)


def parse_record(raw: bytes, text_key: str = "text") -> tuple[dict | None, str | None]:
    """``(record, None)`` for a usable JSON object, else ``(None, drop reason)`` (see module doc)."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = _slow_parse(raw)
        if isinstance(data, str):
            return None, data
    if not isinstance(data, dict) or not isinstance(data.get(text_key), str):
        return None, "missing_text"
    text = data[text_key]
    if not text or text.isspace():  # (no copy of a long text, unlike strip())
        return None, "empty"
    return data, None


def iter_records(path: str | Path, text_key: str = "text", stats: Counter | None = None) -> Iterator[dict]:
    """The usable records of one JSON Lines file (gzip or plain); the rest counted in ``stats``."""
    stats = Counter() if stats is None else stats
    with open(path, "rb") as fh:
        compressed = fh.read(3) == GZIP_MAGIC
        fh.seek(0)
        for raw in iter_lines(fh, gzip=compressed, stats=stats):
            if not raw or raw.isspace():
                continue
            record, reason = parse_record(raw, text_key)
            if record is None:
                stats[f"dropped:{reason}"] += 1
            else:
                yield record


def _slow_parse(raw: bytes) -> dict | list | str | int | float | None:
    """What orjson refused: the parsed value when the standard library can take it, else the reason."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_utf8"
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return "bad_json"
    if _SURROGATE_ESCAPE.search(raw):
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            return "invalid_unicode"
    return data


def sniff_jsonl(path: str | Path, text_key: str = "text", max_lines: int = 20) -> str | None:
    """``None`` when the file reads as JSON Lines with ``text_key``; else what it looks like instead.

    Looks at the first ``max_lines`` non-blank lines: one usable record is enough (damaged
    records are counted later, not refused here). An empty file is fine.
    """
    with open(path, "rb") as fh:
        head = fh.read(8)
    for magic, name in _OTHER_FORMATS:
        if head.startswith(magic):
            return name
    seen: list[bytes] = []
    reasons: Counter = Counter()
    keys: set[str] = set()
    with open(path, "rb") as fh:
        for raw in iter_lines(fh, gzip=head.startswith(GZIP_MAGIC), max_line_bytes=1 << 24):
            if raw is None or not raw.strip():
                continue
            record, reason = parse_record(raw, text_key)
            if record is not None:
                return None
            reasons[reason] += 1
            if reason == "missing_text":
                obj = _slow_parse(raw)
                if isinstance(obj, dict):
                    keys |= set(map(str, obj))
            seen.append(raw)
            if len(seen) >= max_lines:
                break
    if not seen:
        return None
    first = seen[0].lstrip()
    if reasons["invalid_utf8"] == len(seen):
        return "binary or non-UTF-8 data"
    if reasons["missing_text"] and keys:
        return f"JSON objects without a string {text_key!r} field (keys: {', '.join(sorted(keys)[:8])})"
    if first.startswith(b"["):
        return "a JSON array (not one object per line)"
    if first.startswith(b"WARC/"):
        return "WARC records (read them with --format warc or auto)"
    if reasons["empty"] == len(seen):
        return None  # records, only empty ones: counted, not a format problem
    sample = seen[0][:60].decode("utf-8", "replace")
    return f"plain text (first line: {sample!r})"
