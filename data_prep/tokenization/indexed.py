"""Megatron-Core ``.bin/.idx`` written a batch at a time: one document per sequence, EOD included.

The index is written by Megatron-Core's own ``_IndexWriter`` (header, dtype code, lengths,
pointers, document indices: the format ``IndexedDataset`` reads), with its per-sequence pointer
loop replaced by one cumulative sum. The data file gets whole batches of ids; what
``IndexedDatasetBuilder.add_document`` does per document (an array copy, a write, two list
appends) is done per batch — measured 1.4 s of 11 s per 100k short documents before.
Everything is written under ``.tmp`` names and renamed into place, the ``.idx`` last.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def write_index(idx_path: str, dtype, sequence_lengths: np.ndarray, document_indices: np.ndarray) -> None:
    """Write a Megatron ``.idx``; ``document_indices`` starts with 0 and ends with the sequence count."""
    from megatron.core.datasets.indexed_dataset import DType, _IndexWriter

    class IndexWriter(_IndexWriter):
        def _sequence_pointers(self, lengths):
            nbytes = np.asarray(lengths, dtype=np.int64) * DType.size(self.dtype)
            return np.concatenate([[0], np.cumsum(nbytes)[:-1]]) if len(nbytes) else nbytes

    with IndexWriter(idx_path, dtype) as writer:
        writer.write(np.asarray(sequence_lengths, dtype=np.int32), None, np.asarray(document_indices, dtype=np.int64))


class ShardWriter:
    """``prefix.bin/.idx`` from batches of (flat ids, per-document lengths); ``close()`` publishes it."""

    def __init__(self, prefix: str, dtype) -> None:
        self.prefix, self.dtype = prefix, dtype
        self.tmp_bin, self.tmp_idx = f"{prefix}.bin.tmp", f"{prefix}.idx.tmp"
        self._data = open(self.tmp_bin, "wb")
        self._lengths: list[np.ndarray] = []

    def add_batch(self, flat: np.ndarray, lengths: np.ndarray) -> None:
        """``flat``: every id of the batch, documents back to back; ``lengths``: ids per document."""
        self._data.write(np.ascontiguousarray(flat, dtype=self.dtype).tobytes())
        self._lengths.append(np.asarray(lengths, dtype=np.int32))

    def close(self) -> None:
        self._data.close()
        lengths = np.concatenate(self._lengths) if self._lengths else np.zeros(0, dtype=np.int32)
        write_index(self.tmp_idx, self.dtype, lengths, np.arange(len(lengths) + 1, dtype=np.int64))
        os.replace(self.tmp_bin, f"{self.prefix}.bin")
        os.replace(self.tmp_idx, f"{self.prefix}.idx")  # the .idx marks the shard as done

    def discard(self) -> None:
        """Remove the ``.tmp`` files (a failed or interrupted unit)."""
        if not self._data.closed:
            self._data.close()
        for tmp in (self.tmp_bin, self.tmp_idx):
            Path(tmp).unlink(missing_ok=True)
