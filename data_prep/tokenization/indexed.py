"""Megatron-Core's ``.bin/.idx`` format, written a batch at a time without importing Megatron.

The layout is Megatron-Core's ``megatron/core/datasets/indexed_dataset.py`` (``_IndexWriter`` /
``_IndexReader``, version 1): header ``MMIDIDX\\0\\0``, version, dtype code, sequence and document
counts, int32 sequence lengths, int64 byte pointers, int64 document indices. Writing it here
keeps ``midm data …`` free of torch (importing Megatron-Core's dataset module imports torch and
most of ``megatron.core``: ~3 CPU-seconds per process) and lets whole batches go to disk at once
instead of ``IndexedDatasetBuilder.add_document``'s array copy, write and list appends per
document. ``tests/data_prep/test_tokenize.py`` checks the files byte for byte against
``IndexedDatasetBuilder`` and reads every output back with ``IndexedDataset``.
Everything is written under ``.tmp`` names and renamed into place, the ``.idx`` last.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

INDEX_HEADER = b"MMIDIDX\x00\x00"
INDEX_VERSION = 1
DTYPE_CODES = {np.dtype(t): code for t, code in ((np.uint8, 1), (np.int8, 2), (np.int16, 3), (np.int32, 4),
                                                 (np.int64, 5), (np.float64, 6), (np.float32, 7), (np.uint16, 8))}


def write_index(idx_path: str, dtype, sequence_lengths: np.ndarray, document_indices: np.ndarray) -> None:
    """Write an ``.idx``: ``sequence_lengths`` in ids; ``document_indices`` from 0 to the sequence count."""
    dtype = np.dtype(dtype)
    lengths = np.asarray(sequence_lengths, dtype=np.int32)
    pointers = np.zeros(len(lengths), dtype=np.int64)
    if len(lengths) > 1:
        np.cumsum(lengths[:-1].astype(np.int64) * dtype.itemsize, out=pointers[1:])
    docs = np.asarray(document_indices, dtype=np.int64)
    with open(idx_path, "wb") as f:
        f.write(INDEX_HEADER)
        f.write(struct.pack("<Q", INDEX_VERSION))
        f.write(struct.pack("<B", DTYPE_CODES[dtype]))
        f.write(struct.pack("<Q", len(lengths)))
        f.write(struct.pack("<Q", len(docs)))
        f.write(lengths.tobytes())
        f.write(pointers.tobytes())
        f.write(docs.tobytes())


def read_index(idx_path: str) -> tuple[np.dtype, np.ndarray, np.ndarray]:
    """(dtype, int32 sequence lengths, int64 document indices) of an ``.idx``; ValueError if not one."""
    with open(idx_path, "rb") as f:
        if f.read(len(INDEX_HEADER)) != INDEX_HEADER or struct.unpack("<Q", f.read(8))[0] != INDEX_VERSION:
            raise ValueError(f"{idx_path}: not a Megatron index (version {INDEX_VERSION})")
        code = struct.unpack("<B", f.read(1))[0]
        dtype = next(d for d, c in DTYPE_CODES.items() if c == code)
        n_seq, n_doc = struct.unpack("<Q", f.read(8))[0], struct.unpack("<Q", f.read(8))[0]
        lengths = np.fromfile(f, dtype=np.int32, count=n_seq)
        np.fromfile(f, dtype=np.int64, count=n_seq)  # pointers: implied by the lengths
        docs = np.fromfile(f, dtype=np.int64, count=n_doc)
    return dtype, lengths, docs


class ShardWriter:
    """``prefix.bin/.idx`` from batches of (flat ids, per-document lengths); ``close()`` publishes it."""

    def __init__(self, prefix: str, dtype) -> None:
        self.prefix, self.dtype = prefix, np.dtype(dtype)
        self.tmp_bin, self.tmp_idx = f"{prefix}.bin.tmp", f"{prefix}.idx.tmp"
        self._data = open(self.tmp_bin, "wb")
        self._lengths: list[np.ndarray] = []

    def add_batch(self, flat: np.ndarray, lengths: np.ndarray) -> None:
        """``flat``: every id of the batch, documents back to back; ``lengths``: ids per document.
        One document per sequence, as Megatron-LM's ``preprocess_data.py`` writes without
        ``--split-sentences``."""
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
