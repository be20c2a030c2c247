"""Documents out of WARC files (Common Crawl's ``.warc.gz``): HTML responses → main text, every
response accounted for.

datatrove's ``WarcReader`` drops what it cannot use without saying why (a PDF, a page it cannot
decode, a non-200 answer all just vanish), decodes as UTF-8 or a detected charset ignoring the
HTTP header, and ends a file at the first damaged gzip member. Here each WARC ``response``
(and WET ``conversion``) record is one record read, and one of: kept, or dropped by the ``input``
stage with a reason —

* ``http_status``       the HTTP status is not 2xx (a redirect, an error page);
* ``not_html``          the payload is not HTML (``WARC-Identified-Payload-Type`` — Common Crawl's
  sniffed type — else the HTTP ``Content-Type``; a PDF, an image, a non-HTTP response);
* ``decode_error``      no charset decodes the bytes (:func:`data_prep.docio.html.decode_html`);
* ``extraction_empty``  the extractor found no main text (:func:`data_prep.docio.html.extract_main_text`);
* ``too_large``         the payload is over ``max_bytes`` (not held in memory);
* ``truncated_warc``    the record's gzip member is cut off or does not inflate, or the record
  holds fewer bytes than its ``Content-Length``, or its header block is cut off (a plain ``.warc``
  that ends inside it, where warcio stops without a word), or warcio cannot parse it; a ``.warc.gz`` reader
  goes on at the next gzip member (a plain ``.warc`` ends there, and so does a ``.warc.gz``
  compressed as one stream rather than record by record — read with warcio as a stream).

Other record types (``request``, ``metadata``, ``warcinfo``, ``revisit`` …) are not documents:
they are counted under ``warc_skipped:<type>``, outside the identity. A cut-off member whose
``WARC-Type`` is still legible is counted by its type; one cut before it, or inside the type's
name, is counted as a ``truncated_warc`` response. Records are parsed with warcio (the reader datatrove uses); a
``.warc.gz`` is read one gzip member at a time (the WARC 1.1 standard's record-at-a-time
compression, what Common Crawl writes), so damage costs only the member it is in.

A kept record becomes ``{"id": WARC-Record-ID, "text", "url", "warc_date", "charset"}`` where
``charset`` is ``codec:source`` (``cp949:http``, ``utf-8:meta``, ``cp949:detected`` …).
"""
from __future__ import annotations

import gzip
import io
import re
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import BinaryIO

from data_prep.docio.drops import drop
from data_prep.docio.html import decode_html, extract_main_text, is_html_type
from data_prep.docio.records import BLOCK_BYTES, GZIP_MAGIC, next_gzip_member

DOC_TYPES = ("response", "conversion")
_TYPE = re.compile(rb"\r?\nWARC-Type:[ \t]*([A-Za-z]+)", re.IGNORECASE)
WARC_TYPES = ("warcinfo", "response", "resource", "request", "metadata", "revisit", "conversion", "continuation")
_NEXT_RECORD = re.compile(rb"\r\n\r\nWARC/1\.[01]\r\n")  # a second record's start inside one gzip member
_TARGET_URI = re.compile(rb"\r?\nWARC-Target-URI:\s*<?([^\s<>]{1,4000})>?", re.IGNORECASE)
_RECORD_ID = re.compile(rb"\r?\nWARC-Record-ID:\s*(<[^>\r\n]{1,200}>)", re.IGNORECASE)


def _members(fh: BinaryIO, max_bytes: int) -> Iterator[tuple[str, bytes]]:
    """``(status, inflated bytes)`` per gzip member: ``ok``, ``truncated`` (stream ends inside it),
    ``damaged`` (does not inflate; the reader resumes at the next member header) or ``too_large``
    (inflates to more than ``max_bytes``; only the first bytes are returned)."""
    pending = b""
    while True:
        if not pending:
            pending = fh.read(BLOCK_BYTES)
            if not pending:
                return
        pending = pending.lstrip(b"\x00")
        if not pending:
            continue
        inflater = zlib.decompressobj(wbits=31)
        out: list[bytes] = []
        size = 0
        status = None
        while status is None:
            try:
                chunk = inflater.decompress(pending, max_bytes + 1 - size if size <= max_bytes else 1 << 20)
            except zlib.error:
                status = "damaged"
                pending = next_gzip_member(fh, pending[1:])
                break
            if size <= max_bytes:
                out.append(chunk)
            size += len(chunk)
            if inflater.eof:
                status = "ok" if size <= max_bytes else "too_large"
                pending = inflater.unused_data
            elif inflater.unconsumed_tail:
                pending = inflater.unconsumed_tail
            else:
                pending = fh.read(BLOCK_BYTES)
                if not pending:
                    status = "truncated"
        yield status, b"".join(out)[: max_bytes + 1]


def _header(record, name: str) -> str | None:
    value = record.rec_headers.get_header(name)
    return value.strip().strip("<>") if value and name == "WARC-Target-URI" else (value or None)


def _document(record, counts: Counter, max_bytes: int, path: str = "") -> dict | None:
    """One ``response``/``conversion`` record → a document, or None with its drop counted."""
    counts["records"] += 1
    meta = {"url": _header(record, "WARC-Target-URI"), "warc_date": _header(record, "WARC-Date")}
    doc_id = _header(record, "WARC-Record-ID") or f"{meta['url']}@{meta['warc_date']}"
    where = {"file": path, "warc_record_id": doc_id, "url": meta["url"]}
    body = record.content_stream().read(max_bytes + 1)
    if len(body) > max_bytes:
        drop(counts, "too_large", **where)
        return None
    if getattr(record.raw_stream, "limit", 0):  # fewer bytes than Content-Length: a cut record
        drop(counts, "truncated_warc", **where)
        return None
    if record.rec_type == "conversion":  # WET: the text is already extracted, UTF-8
        try:
            text = body.decode("utf-8").strip()
        except UnicodeDecodeError:
            drop(counts, "decode_error", **where)
            return None
        if not text:
            drop(counts, "extraction_empty", **where)
            return None
        return {"id": doc_id, "text": text, **meta}
    http = record.http_headers
    if http is None:
        drop(counts, "not_html", **where)
        return None
    if not http.get_statuscode().startswith("2"):
        drop(counts, "http_status", **where)
        return None
    content_type = http.get_header("Content-Type")
    if not is_html_type(_header(record, "WARC-Identified-Payload-Type") or content_type, body):
        drop(counts, "not_html", **where)
        return None
    html, charset = decode_html(body, content_type)
    if html is None:
        drop(counts, "decode_error", **where)
        return None
    text = extract_main_text(html)
    if not text:
        drop(counts, "extraction_empty", **where)
        return None
    return {"id": doc_id, "text": text, **meta, "charset": charset}


class _Tail:
    """A read-only stream that keeps the last bytes it gave out (at least ``keep``), and its position.

    warcio ends its iteration without a word when a stream stops inside a record's header block (it
    takes the ``EOFError`` for the end of the file): what follows the last whole record is then
    read back from here and counted. A gzip stream that ends early (``EOFError``) reads as its end."""

    def __init__(self, stream: BinaryIO, keep: int = 1 << 16):
        self.stream, self.keep, self.pos = stream, keep, 0
        self.tail = bytearray()

    def read(self, size: int = -1) -> bytes:
        try:
            data = self.stream.read(size)
        except EOFError:
            data = b""
        self.pos += len(data)
        self.tail += data
        if len(self.tail) > 2 * self.keep:
            del self.tail[: len(self.tail) - self.keep]
        return data

    def tell(self) -> int:
        return self.pos

    def since(self, offset: int) -> bytes:
        """The bytes from ``offset`` on (only the kept ones when it lies further back)."""
        back = self.pos - offset
        return bytes(self.tail[-back:]) if 0 < back <= len(self.tail) else bytes(self.tail) if back > 0 else b""


def _records(stream: BinaryIO, counts: Counter, max_bytes: int, path: str = "") -> Iterator[dict]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    tail = _Tail(stream)
    records = ArchiveIterator(tail, arc2warc=True)
    try:
        for record in records:
            if record.rec_headers.get_header("Content-Length") is None:  # a header block cut off by the stream's end
                _count_cut(b"\r\n" + record.rec_headers.to_bytes(), counts, path)
                continue
            if record.rec_type not in DOC_TYPES:
                counts[f"warc_skipped:{record.rec_type}"] += 1
                continue
            doc = _document(record, counts, max_bytes, path)
            if doc is not None:
                yield doc
    # warcio's errors on a cut or garbled record are not all its own (AttributeError on a header
    # cut in half, IndexError …): any of them ends this member or stream, counted, never the run
    except (ArchiveLoadFailed, ValueError, EOFError, OSError, zlib.error, AttributeError, IndexError, KeyError):
        _count_cut(b"", counts, path)  # unparsable or cut off mid-record: lost, counted, the file goes on (gzip)
        return
    rest = tail.since(records.offset)  # after the last whole record: blank lines, or a record cut in its headers
    if rest.strip(b"\r\n\t \x00"):
        _count_cut(rest, counts, path)


def _count_cut(partial: bytes, counts: Counter, path: str = "", reason: str = "truncated_warc") -> None:
    """A record that cannot be read whole: by its type when legible, else a ``truncated_warc`` response."""
    match = _TYPE.search(partial[:8192])
    kind = match.group(1).decode("ascii").lower() if match else "response"
    if kind not in WARC_TYPES:  # the name itself cut off ("respo")
        kind = "response"
    if kind in DOC_TYPES:
        counts["records"] += 1
        found, uri = _RECORD_ID.search(partial[:8192]), _TARGET_URI.search(partial[:8192])
        drop(counts, reason, file=path, warc_record_id=found.group(1).decode("ascii", "replace") if found else None,
             url=uri.group(1).decode("utf-8", "replace") if uri else None)
    else:
        counts[f"warc_skipped:{kind}"] += 1


def iter_warc(path: str, counts: Counter, max_bytes: int = 4_000_000,
              on_position: Callable[[int], None] | None = None) -> Iterator[dict]:
    """Documents of one ``.warc`` / ``.warc.gz`` file (see the module doc); drops counted in ``counts``.

    ``max_bytes``: the largest record (inflated, HTTP headers included) and payload read into
    memory (Common Crawl truncates payloads at 1 MiB). Never raises for damaged content.
    ``on_position(bytes)``: how far into the (compressed) file reading has got, after each gzip member.
    """
    with open(path, "rb") as fh:
        compressed = fh.read(3) == GZIP_MAGIC
        fh.seek(0)
        if not compressed:
            yield from _records(fh, counts, max_bytes, path)
            return
        for k, (status, data) in enumerate(_members(fh, max_bytes + (1 << 16))):
            if on_position is not None:
                on_position(fh.tell())
            if status == "ok":
                yield from _records(io.BytesIO(data), counts, max_bytes, path)
            elif status == "too_large" and k == 0 and _NEXT_RECORD.search(data):
                # not one record per member but the whole file in one gzip stream (``gzip x.warc``):
                # inflated as a stream (warcio refuses such a file) and parsed record by record;
                # damage then ends the file
                with gzip.open(path, "rb") as stream:
                    yield from _records(stream, counts, max_bytes, path)
                return
            elif status == "too_large":
                _count_cut(data, counts, path, "too_large")
            elif status == "truncated" and _NEXT_RECORD.search(data):
                yield from _records(io.BytesIO(data), counts, max_bytes, path)  # whole records, then the cut one
            else:
                _count_cut(data, counts, path)


def sniff_warc(path: str) -> str | None:
    """``None`` when the file starts with a WARC record (plain or gzip); else what it looks like."""
    with open(path, "rb") as fh:
        head = fh.read(1 << 16)
    if not head:
        return None
    if head.startswith(GZIP_MAGIC):
        try:
            head = zlib.decompressobj(wbits=31).decompress(head, 64)
        except zlib.error:
            return "gzip data that does not inflate"
        if not head:
            return None
    if head.lstrip().startswith(b"WARC/"):
        return None
    sample = head[:40].decode("utf-8", "replace")
    return f"no WARC record at the start (first bytes: {sample!r})"
