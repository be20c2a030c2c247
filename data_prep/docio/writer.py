"""JSONL writers that give back exactly the user's fields (datatrove nests them under ``metadata``).

Compression level. datatrove opens its ``.jsonl.gz`` files through fsspec's gzip codec, which takes
no level and so compresses at zlib's slowest, 9 (measured on the default 19 MB corpus: 1.3 CPU-s
per pass at 9, 0.24 s at 1, files 35 % larger at 1). The run writes every document several times
(each phase's shards under ``OUT/_work/`` are read back once by the next phase), so our writers open
their gzip files themselves: level 1 for those work shards (:data:`WORK_LEVEL`), 3 for what the user
keeps (the kept output and rejects, :data:`OUTPUT_LEVEL`: within 20 % of level 9's size at a quarter
of its time). The files stay ordinary ``.jsonl.gz``.
"""
from __future__ import annotations

import gzip
from typing import IO

from datatrove.data import Document
from datatrove.io import DataFolderLike, OutputFileManager
from datatrove.pipeline.writers.jsonl import JsonlWriter

WORK_LEVEL = 1
OUTPUT_LEVEL = 3


def flat_record(document: Document) -> dict:
    """``{"id", "text", **other fields}`` — the input schema, plus our ``_midm`` annotations."""
    meta = dict(document.metadata)
    if meta.pop("_midm_generated_id", False):
        meta["_midm_generated_id"] = True
    return {"id": document.id, "text": document.text, **meta}


class _GzipFile(gzip.GzipFile):
    """A gzip stream over a file it owns: closing it closes that file too (``GzipFile(fileobj=…)`` does not)."""

    def __init__(self, raw: IO[bytes], compresslevel: int):
        super().__init__(fileobj=raw, mode="wb", compresslevel=compresslevel)
        self._raw = raw

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._raw.close()


class GzipFileManager(OutputFileManager):
    """datatrove's output file manager, writing gzip at ``compresslevel`` (1 = fastest … 9)."""

    def __init__(self, fs, compresslevel: int):
        super().__init__(fs, mode="wb", compression=None)
        self.compresslevel = compresslevel

    def get_file(self, filename: str) -> IO[bytes]:
        if filename not in self._output_files:
            self._output_files[filename] = _GzipFile(self.fs.open(filename, mode="wb"), self.compresslevel)
        return self._output_files[filename]


class _LeveledJsonlWriter(JsonlWriter):
    """``JsonlWriter`` (gzip) whose files are compressed at ``compresslevel`` and named by rank only."""

    def __init__(self, output_folder: DataFolderLike, output_filename: str, compresslevel: int):
        super().__init__(output_folder, output_filename=output_filename, compression="gzip")
        self.output_mg = GzipFileManager(self.output_folder, compresslevel)
        self._names: dict[int | str, str] = {}

    def _get_output_filename(self, document: Document, rank: int | str = 0, **kwargs) -> str:
        """The file of ``rank`` (our names hold no other placeholder), looked up once per rank.

        datatrove's version fills the name template from the document's metadata for every document,
        metadata last: a record with a field named ``rank`` went to a file of that name, which the next
        phase (:class:`data_prep.docio.reader.RankFileReader`) never reads, and was lost."""
        if kwargs:
            return self.output_filename.substitute(kwargs, rank=str(rank).zfill(5))
        name = self._names.get(rank)
        if name is None:
            name = self._names[rank] = self.output_filename.substitute(rank=str(rank).zfill(5))
        return name


class FlatJsonlWriter(_LeveledJsonlWriter):
    """``JsonlWriter`` whose records keep the input's flat schema; one file per rank.

    ``compresslevel``: :data:`WORK_LEVEL` for shards under ``OUT/_work/``, :data:`OUTPUT_LEVEL` (default)
    for the kept output."""

    def __init__(self, output_folder: DataFolderLike, output_filename: str = "${rank}.jsonl.gz",
                 compresslevel: int = OUTPUT_LEVEL):
        super().__init__(output_folder, output_filename, compresslevel)

    def _default_adapter(self, document: Document) -> dict:
        return flat_record(document)


class RejectWriter(_LeveledJsonlWriter):
    """Writes dropped documents with the stage and reason that dropped them."""

    def __init__(self, output_folder: DataFolderLike, stage: str, reason: str | None = None):
        name = f"{stage}/{reason}_${{rank}}.jsonl.gz" if reason else f"{stage}/${{rank}}.jsonl.gz"
        super().__init__(output_folder, name, OUTPUT_LEVEL)
        self.stage = stage
        self.reason = reason

    def _default_adapter(self, document: Document) -> dict:
        record = flat_record(document)
        record["_midm_reject"] = {"stage": self.stage,
                                  "reason": document.metadata.get("_midm_reason", self.reason)}
        record.pop("_midm_reason", None)
        return record
