"""Counting input drops, and — with ``--keep-rejects`` — saying which records they were.

WARC and Parquet readers count a record they cannot use as ``counts["dropped:<reason>"]``, like
the JSON Lines reader. :func:`drop` does that and, when the counter is a :class:`DropLog`, also
hands the record's whereabouts (file, WARC-Record-ID and URL, Parquet row or row group) to the
log's sink, which ``midm data filter --keep-rejects`` points at ``rejects/input/`` — so a dropped
web page can be found again, not only counted.
"""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable

Sink = Callable[[str, int, dict[str, Any]], None]


class DropLog(Counter):
    """A ``Counter`` whose :func:`drop` calls also go to ``sink(reason, n_records, where)``."""

    def __init__(self, sink: Sink) -> None:
        super().__init__()
        self.sink = sink


def drop(counts: Counter, reason: str, n: int = 1, **where: Any) -> None:
    """Count ``n`` records dropped for ``reason`` (``counts["dropped:<reason>"] += n``); a
    :class:`DropLog` also passes ``where`` (JSON-serialisable values) to its sink."""
    counts[f"dropped:{reason}"] += n
    sink = getattr(counts, "sink", None)
    if sink is not None and n:
        sink(reason, n, where)
