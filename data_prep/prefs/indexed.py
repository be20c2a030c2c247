"""Write Megatron-Core's indexed-dataset format (``PREFIX.bin`` + ``PREFIX.idx``) with numpy only.

The format is Megatron-Core's (``megatron/core/datasets/indexed_dataset.py``: ``_IndexWriter``),
version 1:

    .idx = b"MMIDIDX\\x00\\x00" | <Q 1 | <B dtype code | <Q n_sequences | <Q n_document_indices
           | int32[n_sequences] lengths | int64[n_sequences] byte pointers into .bin
           | int64[n_document_indices] document boundaries (sequence indices, starting with 0)
    .bin = the sequences' items back to back, little-endian ``dtype``

Written here without torch so ``midm data prefs`` stays import-light; the trainer reads the files
with Megatron-Core's own ``IndexedDataset`` (a test checks the round trip). Files appear
atomically: both are written under temporary names and renamed, ``.idx`` last, so a prefix
whose ``.idx`` exists is complete.
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

HEADER = b"MMIDIDX\x00\x00"
VERSION = 1
# Megatron-Core's DType codes
DTYPE_CODES = {np.dtype(np.uint8): 1, np.dtype(np.int8): 2, np.dtype(np.int16): 3, np.dtype(np.int32): 4,
               np.dtype(np.int64): 5, np.dtype(np.float64): 6, np.dtype(np.float32): 7, np.dtype(np.uint16): 8}


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 below 65,500 ids (as Megatron's ``DType.optimal_dtype``), else int32."""
    return np.dtype(np.uint16) if vocab_size < 65_500 else np.dtype(np.int32)


class IndexedWriter:
    """Append sequences, mark document ends, then :meth:`finalize` (or use as a context manager).

    Args:
        prefix: output path without ``.bin``/``.idx``.
        dtype: item dtype (one of :data:`DTYPE_CODES`).

    Raises:
        ValueError: an unsupported dtype, or a value that does not fit it.
    """

    def __init__(self, prefix: str | Path, dtype) -> None:
        self.dtype = np.dtype(dtype)
        if self.dtype not in DTYPE_CODES:
            raise ValueError(f"dtype {self.dtype} is not one of Megatron's indexed-dataset dtypes")
        self.prefix = str(prefix)
        self._tmp_bin = f"{self.prefix}.bin.tmp"
        self._bin = open(self._tmp_bin, "wb")
        self.lengths: list[int] = []
        self.document_indices: list[int] = [0]
        info = np.iinfo(self.dtype) if self.dtype.kind in "iu" else None
        self._range = (info.min, info.max) if info else None

    def add(self, values) -> None:
        """One sequence (a 1-D sequence of numbers)."""
        array = np.asarray(values)
        if self._range and array.size and (array.min() < self._range[0] or array.max() > self._range[1]):
            raise ValueError(f"values outside {self.dtype} range {self._range}")
        self._bin.write(array.astype(self.dtype, copy=False).tobytes(order="C"))
        self.lengths.append(int(array.size))

    def end_document(self) -> None:
        """Close the current document (the sequences added since the previous call)."""
        self.document_indices.append(len(self.lengths))

    def finalize(self) -> None:
        """Write ``.idx`` and move both files into place."""
        self._bin.close()
        lengths = np.asarray(self.lengths, dtype=np.int64)
        pointers = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) * self.dtype.itemsize \
            if len(lengths) else np.zeros(0, dtype=np.int64)
        tmp_idx = f"{self.prefix}.idx.tmp"
        with open(tmp_idx, "wb") as f:
            f.write(HEADER)
            f.write(struct.pack("<Q", VERSION))
            f.write(struct.pack("<B", DTYPE_CODES[self.dtype]))
            f.write(struct.pack("<Q", len(self.lengths)))
            f.write(struct.pack("<Q", len(self.document_indices)))
            f.write(lengths.astype(np.int32).tobytes(order="C"))
            f.write(pointers.tobytes(order="C"))
            f.write(np.asarray(self.document_indices, dtype=np.int64).tobytes(order="C"))
        os.replace(self._tmp_bin, f"{self.prefix}.bin")
        os.replace(tmp_idx, f"{self.prefix}.idx")

    def abort(self) -> None:
        """Drop the partial files (after an error)."""
        self._bin.close()
        for path in (self._tmp_bin, f"{self.prefix}.idx.tmp"):
            if os.path.exists(path):
                os.remove(path)

    def __enter__(self) -> "IndexedWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.finalize()
        else:
            self.abort()
