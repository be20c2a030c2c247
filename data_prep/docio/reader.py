"""A JSONL(.gz) reader that survives real-world input.

datatrove's ``JsonlReader`` opens files in text mode, so one invalid UTF-8 byte aborts the
rest of the file, and a truncated ``.gz`` ends the shard silently. Web dumps contain both.
This reader reads *bytes* through :mod:`data_prep.docio.records` (the layer every data command
shares) and counts every malformed record by reason (``bad_json``, ``invalid_utf8``,
``invalid_unicode``, ``missing_text``, ``empty``, ``too_large``) and every damaged gzip member
(``damaged_gzip_member``, ``truncated_gzip``), so that the run's accounting balances:
records = kept + Σ dropped.

Every field other than ``text`` and ``id`` is carried in ``Document.metadata`` and written
back at the top level by :mod:`data_prep.docio.writer`.

The same reader takes WARC and Parquet files (``formats``: path → format, from
:func:`data_prep.docio.sources.expand_sources`) through :mod:`data_prep.docio.sources`, and
:class:`HubReader` a Hub dataset: their records land in the same ``input`` counters, so
``records = kept + Σ dropped`` holds whatever the format (``not_html``, ``http_status``,
``decode_error``, ``extraction_empty``, ``truncated_warc``, ``damaged_row_group`` …).
"""
from __future__ import annotations

import gzip
import json
import os
from collections import Counter
from pathlib import Path

import orjson
from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.readers.base import BaseDiskReader

from data_prep.accounting import write_counts
from data_prep.docio.drops import DropLog
from data_prep.docio.records import GZIP_MAGIC, iter_lines, parse_record
from data_prep.progress import ReadProgress

INPUT_STAGE = "input"
_GLOB = "**/*.jsonl*"


def _document(record: dict, filepath: str, line_no: int) -> Document:
    text = record.pop("text")
    doc_id = record.pop("id", None)
    if doc_id is None:
        doc_id = f"{filepath}#{line_no}"
        record["_midm_generated_id"] = True
    return Document(text=text, id=doc_id, metadata=record)


class RobustJsonlReader(BaseDiskReader):
    """Read ``*.jsonl`` / ``*.jsonl.gz`` shards (and the WARC/Parquet files named in ``formats``);
    count malformed records instead of crashing."""

    name = "📖 robust-jsonl"

    def __init__(self, data_folder, counts_dir: str, max_doc_bytes: int = 2_000_000,
                 glob_pattern: str | None = _GLOB, paths_file: str | None = None, doc_progress: bool = False,
                 formats: dict[str, str] | None = None):
        super().__init__(data_folder, paths_file=paths_file, glob_pattern=glob_pattern, add_file_path=False,
                         doc_progress=doc_progress)
        self.counts_dir = counts_dir
        self.max_doc_bytes = max_doc_bytes
        self.formats = formats or {}
        self.counts: Counter = Counter()
        self.progress_dir: str | None = None  # set by the filter run: OUT/_work/progress/<step>
        self.rejects_dir: str | None = None  # set with --keep-rejects: unreadable records go to rejects/input/
        self._progress = ReadProgress(None, 0)
        self._bytes_done = 0
        self._rank, self._rejects, self._file = 0, None, ""

    def _parse(self, raw: bytes | None, filepath: str, line_no: int) -> Document | None:
        counts = self.counts
        if raw is not None and not raw.strip():
            return None  # blank line: not a record
        counts["records"] += 1
        if raw is None:
            counts["dropped:too_large"] += 1
            self._reject(filepath, line_no, "too_large", None)
            return None
        data, reason = parse_record(raw)
        if data is None:
            counts[f"dropped:{reason}"] += 1
            self._reject(filepath, line_no, reason, raw)
            return None
        counts["out"] += 1
        return _document(data, filepath, line_no)

    def _reject(self, filepath: str, line_no: int, reason: str, raw: bytes | None) -> None:
        """With ``--keep-rejects``: the unreadable record, as much of it as is text, under rejects/input/."""
        if self.rejects_dir is None:
            return
        path = self._display_path(filepath)
        self._write_reject({"id": f"{path}#{line_no}", "_midm_reject": {"stage": INPUT_STAGE, "reason": reason},
                            "file": path, "line": line_no + 1,
                            "raw": None if raw is None else raw.decode("utf-8", "backslashreplace")})

    def _write_reject(self, record: dict) -> None:
        if self._rejects is None:  # opened on the first reject: no empty file when every record reads
            self._rejects = _open_rejects(self.rejects_dir, self._rank)
        self._rejects.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))

    def _display_path(self, filepath: str) -> str:
        """The input file as a path that opens: datatrove's ``filepath`` is relative to the data folder
        (``/`` for absolute inputs, where ``resolve_paths`` would give ``//tmp/…``)."""
        return os.path.join(self.data_folder.path, filepath)

    def _source_drop(self, reason: str, n: int, where: dict) -> None:
        """With ``--keep-rejects``: where a WARC/Parquet record the input stage dropped was (its
        WARC-Record-ID and URL, or its Parquet row / row group), under rejects/input/."""
        self._write_reject(_source_reject(self._file, reason, n, where))

    def read_file(self, filepath: str) -> DocumentsPipeline:
        self.counts["files"] += 1
        fmt = self.formats.get(filepath, "jsonl")
        if fmt != "jsonl":
            from data_prep.docio.sources import Source, iter_source_records

            path = self.data_folder.resolve_paths(filepath)
            self._file = self._display_path(filepath)
            done = self._bytes_done

            def position(pos: int) -> None:
                self._progress.update(done + pos, self.counts["records"])

            for n, record in enumerate(iter_source_records(Source(path, fmt), self.counts, on_position=position,
                                                           max_bytes=max(self.max_doc_bytes, 1 << 20))):
                self.counts["out"] += 1
                self.stat_update("documents")
                yield _document(record, filepath, n)
            self._bytes_done += os.path.getsize(path)
            self._progress.update(self._bytes_done, self.counts["records"])
            return
        with self.data_folder.open(filepath, "rb") as raw_f:
            compressed = raw_f.read(3) == GZIP_MAGIC
            raw_f.seek(0)
            lines = iter_lines(raw_f, gzip=compressed, max_line_bytes=self.max_doc_bytes, stats=self.counts)
            for line_no, raw in enumerate(lines):
                doc = self._parse(raw, filepath, line_no)
                self._progress.update(self._bytes_done + raw_f.tell(), self.counts["records"])
                if doc is not None:
                    self.stat_update("documents")
                    yield doc
            self._bytes_done += raw_f.tell()

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        self.counts = DropLog(self._source_drop) if self.rejects_dir else Counter()
        self._progress, self._bytes_done = ReadProgress(self.progress_dir, rank), 0
        self._rank, self._rejects = rank, None
        if self.rejects_dir:  # a rank that is run again starts its rejects again
            _rejects_path(self.rejects_dir, rank).unlink(missing_ok=True)
        try:
            yield from super().run(data, rank, world_size)
        finally:
            if self._rejects is not None:
                self._rejects.close()
                self._rejects = None
        self._progress.update(self._bytes_done, self.counts["records"], final=True)
        counts = dict(self.counts)
        counts["in"] = counts.get("records", 0)
        write_counts(self.counts_dir, INPUT_STAGE, rank, counts)


def _source_reject(file: str, reason: str, n: int, where: dict) -> dict:
    """The ``rejects/input/`` record of ``n`` WARC/Parquet/Hub records the input stage dropped: where
    they were (WARC-Record-ID and URL, or row / row group)."""
    name = where.get("warc_record_id") or where.get("url") or (
        f"row {where['row']}" if "row" in where else f"row group {where.get('row_group')}")
    return {"id": f"{file}#{name}", "_midm_reject": {"stage": INPUT_STAGE, "reason": reason},
            "records": n, **{k: v for k, v in where.items() if v is not None}, "file": file}


class HubReader(PipelineStep):
    """Read Hugging Face datasets (ids, or local Hub-layout directories), each task its part of each stream."""

    name = "📖 hub"
    type = "📖 - READER"

    def __init__(self, sources: list[str], counts_dir: str, config: str | None = None, split: str = "train"):
        super().__init__()
        self.sources, self.counts_dir, self.config, self.split = sources, counts_dir, config, split
        self.rejects_dir: str | None = None  # set with --keep-rejects: dropped rows go to rejects/input/

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from data_prep.docio.sources import Source, iter_source_records

        rejects = None

        def sink(reason: str, n: int, where: dict) -> None:
            nonlocal rejects
            if rejects is None:
                rejects = _open_rejects(self.rejects_dir, rank)
            record = _source_reject(str(where.get("file")), reason, n, where)
            rejects.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))

        counts: Counter = DropLog(sink) if self.rejects_dir else Counter()
        if self.rejects_dir:  # a rank that is run again starts its rejects again
            _rejects_path(self.rejects_dir, rank).unlink(missing_ok=True)
        try:
            for source in self.sources:
                for n, record in enumerate(iter_source_records(Source(source, "hub"), counts, hub_config=self.config,
                                                               hub_split=self.split, rank=rank, world_size=world_size)):
                    counts["out"] += 1
                    self.stat_update("documents")
                    yield _document(record, source, n)
        finally:
            if rejects is not None:
                rejects.close()
        counts = dict(counts)
        counts["in"] = counts.get("records", 0)
        write_counts(self.counts_dir, INPUT_STAGE, rank, counts)


def _rejects_path(rejects_dir: str, rank: int) -> Path:
    return Path(rejects_dir) / INPUT_STAGE / f"{rank:05d}.jsonl.gz"


def _open_rejects(rejects_dir: str, rank: int):
    """``rejects/input/{rank:05d}.jsonl.gz`` (gzip, like the other stages' rejects), for writing."""
    path = _rejects_path(rejects_dir, rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    return gzip.open(path, "wb")


class RankFileReader(BaseDiskReader):
    """Read exactly ``{rank:05d}.jsonl.gz`` of an intermediate folder (or nothing).

    Dedup stages address documents by their index inside a *rank's* stream, so the second
    pass must read the very file the same rank wrote in the first pass — not datatrove's
    round-robin file sharding, which shifts when a rank wrote no file at all.
    """

    name = "📖 rank-file"

    def __init__(self, data_folder):
        super().__init__(data_folder, add_file_path=False)
        self.progress_dir: str | None = None  # set by the filter run: OUT/_work/progress/<step>

    def read_file(self, filepath: str) -> DocumentsPipeline:
        progress = ReadProgress(self.progress_dir, self._rank)
        n = 0
        with self.data_folder.open(filepath, "rb") as f:
            for raw in gzip.GzipFile(fileobj=f) if filepath.endswith(".gz") else f:
                data = orjson.loads(raw)  # written by datatrove's JsonlWriter (orjson): half json.loads' time
                text = data.pop("text")
                n += 1
                progress.update(f.tell(), n)
                yield Document(text=text, id=data.pop("id"), metadata=data)
            progress.update(f.tell(), n, final=True)

    def run(self, data: DocumentsPipeline = None, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        name = f"{rank:05d}.jsonl.gz"
        self._rank = rank
        if self.data_folder.exists(name):
            yield from self.read_file(name)
