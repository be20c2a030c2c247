"""Base class of our stages: one ``process`` per document, counted drops, optional rejects.

Heavy resources (Kiwi, fastText models, automata) are created lazily in ``setup`` inside the
task, so a pipeline pickles small for Slurm and every worker loads its own copy.
"""
from __future__ import annotations

import abc
import contextlib
from collections import Counter
from typing import Any

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.utils.logging import logger

from data_prep.accounting import write_counts
from data_prep.docio.writer import RejectWriter
from data_prep.errors import DataError

STAGE_ERROR = "stage_error"
FAIL_AFTER_ERRORS = 20  # this many documents in a row raising, from the first on: a bug, not bad records


class MidmStage(PipelineStep):
    """``process(doc)`` returns ``None`` to keep (possibly after editing) or a drop reason.

    A document on which ``process`` raises is dropped as ``stage_error`` (the exception type is
    counted as ``error:<Type>``, the first few are logged with the document id): one strange text
    never ends a run. When the first :data:`FAIL_AFTER_ERRORS` documents all raise, or more than
    half of a task's documents do, the stage raises :class:`DataError` instead — that is a broken
    stage or configuration, and dropping everything would hide it.
    """

    stage: str = "stage"
    type = "🇰🇷 - MIDM"

    def __init__(self, counts_dir: str, config: dict[str, Any], rejects_dir: str | None = None):
        super().__init__()
        self.counts_dir = counts_dir
        self.config = dict(config)
        self.rejects_dir = rejects_dir
        self.counts: Counter = Counter()
        self._ready = False
        self._first_error = ""

    @property
    def name(self) -> str:  # shown in datatrove logs
        return f"midm:{self.stage}"

    def setup(self) -> None:
        """Load heavy resources (called once per task, inside the worker)."""

    @abc.abstractmethod
    def process(self, doc: Document) -> str | None:
        """Each stage's rule: None keeps the document, a string names the drop reason."""

    def finish(self, rank: int, world_size: int) -> None:
        """Hook after the last document (e.g. write a score histogram)."""

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        if not self._ready:
            self.setup()
            self._ready = True
        self.counts = Counter()
        writer = RejectWriter(self.rejects_dir, self.stage) if self.rejects_dir else None
        errors = 0
        with writer if writer else contextlib.nullcontext():
            for doc in data:
                self.counts["in"] += 1
                with self.track_time():
                    try:
                        reason = self.process(doc)
                    except Exception as err:  # noqa: BLE001 — counted, logged, bounded below
                        reason = STAGE_ERROR
                        errors += 1
                        self._note_error(doc, err, errors)
                if reason is None:
                    self.counts["out"] += 1
                    yield doc
                    continue
                self.counts[f"dropped:{reason}"] += 1
                self.stat_update(f"dropped_{reason}")
                if writer:
                    doc.metadata["_midm_reason"] = reason
                    writer.write(doc, rank)
        self.finish(rank, world_size)
        write_counts(self.counts_dir, self.stage, rank, self.counts)
        if errors >= FAIL_AFTER_ERRORS and errors * 2 > self.counts["in"]:
            raise DataError(f"stage {self.stage}: {errors} of {self.counts['in']} documents raised an error "
                            f"({self._first_error}); that is a broken stage or configuration, not bad records")

    def _note_error(self, doc: Document, err: Exception, errors: int) -> None:
        self.counts[f"error:{type(err).__name__}"] += 1
        if errors == 1:
            self._first_error = f"first: {type(err).__name__}: {err} on document {doc.id!r}"
        if errors <= 3:
            logger.warning(f"midm:{self.stage}: document {doc.id!r} dropped as {STAGE_ERROR} "
                           f"({type(err).__name__}: {err})")
        if errors == FAIL_AFTER_ERRORS and self.counts["in"] == errors:
            raise DataError(f"stage {self.stage}: the first {errors} documents all raised an error "
                            f"({self._first_error}); that is a broken stage or configuration, not bad records")


class CountedStep(PipelineStep):
    """Wrap a datatrove filter (e.g. MinHash) so its drops are counted under our stage/reason."""

    type = "🇰🇷 - MIDM"

    def __init__(self, inner: PipelineStep, counts_dir: str, stage: str, reason: str):
        self.stage = stage
        self.reason = reason
        super().__init__()
        self.inner = inner
        self.counts_dir = counts_dir

    @property
    def name(self) -> str:
        return f"midm:{self.stage}:{self.reason}"

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        n_in = 0

        def counted(stream):
            nonlocal n_in
            for doc in stream:
                n_in += 1
                yield doc

        n_out = 0
        for doc in self.inner.run(counted(data), rank, world_size):
            n_out += 1
            yield doc
        write_counts(self.counts_dir, self.stage, rank,
                     {"in": n_in, "out": n_out, f"dropped:{self.reason}": n_in - n_out})
