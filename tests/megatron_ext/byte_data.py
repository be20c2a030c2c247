"""A byte-level tokenization of the committed corpus into Megatron .bin/.idx (test helper).

UTF-8 bytes are ids 0–255 and the end-of-document id is 256, so the vocabulary is padded to 384
(divisible by TP=2). It is a real, lossless tokenizer and keeps the training-core tests independent
of the SentencePiece tokenizer stage.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from tests.conftest import TEST_DATA

EOD = 256
VOCAB = 384


def write_byte_prefix(out_dir: Path, name: str = "corpus", docs: int | None = None) -> str:
    """Write ``out_dir/name.bin/.idx`` from the corpus (its first ``docs`` documents when given)."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    prefix = str(out_dir / name)
    builder = IndexedDatasetBuilder(prefix + ".bin", dtype=np.uint16)
    lines = [line for path in sorted((TEST_DATA / "corpus").glob("*.jsonl"))
             for line in path.read_text(encoding="utf-8").splitlines()]
    for line in lines[:docs]:
        ids = list(json.loads(line)["text"].encode("utf-8")) + [EOD]
        builder.add_document(torch.tensor(ids, dtype=torch.int64), [len(ids)])
    builder.finalize(prefix + ".idx")
    return prefix
