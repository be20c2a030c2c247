"""The on-disk format of ``midm data sft`` output, and its reader (numpy only, no torch).

Layout of ``OUT/``::

    index.json                       format, seq_length, packed, special ids, tokenizer (+ tokenizer_fingerprint),
                                     per-split shard list
    stats.json                       the accounting summary (read = kept + Σ dropped)
    {split}-{k:05d}/tokens.npy       [n_tokens] uint16 (vocab < 65,500) or int32: every conversation's ids
    {split}-{k:05d}/loss_mask.npy    [n_tokens] uint8, 1 where the id is a training target
    {split}-{k:05d}/conversations.npy [n_conversations + 1] int64 offsets into tokens
    {split}-{k:05d}/samples.npy      [n_samples + 1] int64 offsets into conversations

A *sample* is one training sequence of at most ``seq_length`` tokens: several conversations when
packed, one otherwise. Like Megatron-Bridge's packed SFT files (``.npy``, ``input_ids`` +
``loss_mask`` + ``seq_start_id``) but flat arrays (memory-mapped, never pickled). Written into a
temporary directory and renamed into place, so ``OUT`` is either complete or absent.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from midm.errors import MidmError

FORMAT, VERSION = "midm-sft", 1
INDEX_FILE = "index.json"
ARRAYS = ("tokens", "loss_mask", "conversations", "samples")


class SFTDataError(MidmError, ValueError):
    """SFT input or output that cannot be used; the message says what to do."""


def token_dtype(vocab_size: int):
    return np.uint16 if vocab_size < 65500 else np.int32


def write_shard(directory: Path, conversations: list[tuple[np.ndarray, np.ndarray]], samples: list[list[int]],
                dtype) -> dict:
    """Write one shard; ``samples`` are lists of indices into ``conversations`` (stored in that order)."""
    directory.mkdir(parents=True)
    order = [c for sample in samples for c in sample]
    lengths = np.fromiter((len(conversations[c][0]) for c in order), dtype=np.int64, count=len(order))
    tokens = np.concatenate([conversations[c][0] for c in order]).astype(dtype) if order else np.zeros(0, dtype)
    mask = np.concatenate([conversations[c][1] for c in order]).astype(np.uint8) if order else np.zeros(0, np.uint8)
    arrays = {"tokens": tokens, "loss_mask": mask,
              "conversations": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
              "samples": np.concatenate([[0], np.cumsum([len(s) for s in samples])]).astype(np.int64)}
    for name, arr in arrays.items():
        np.save(directory / f"{name}.npy", arr, allow_pickle=False)
    return {"name": directory.name, "samples": len(samples), "conversations": len(order),
            "tokens": int(tokens.size), "target_tokens": int(mask.sum())}


def read_index(root: str | Path) -> dict:
    """``index.json`` of a ``midm data sft`` output; raises :class:`SFTDataError` when absent or foreign."""
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        raise SFTDataError(f"{root}: no {INDEX_FILE}; write SFT data with `midm data sft IN… OUT --tokenizer DIR`")
    index = json.loads(path.read_text(encoding="utf-8"))
    if index.get("format") != FORMAT or index.get("version") != VERSION:
        raise SFTDataError(f"{path}: not a {FORMAT} v{VERSION} index (got {index.get('format')!r} "
                           f"v{index.get('version')!r}); re-run `midm data sft`")
    return index


@dataclass
class _Shard:
    tokens: np.ndarray
    loss_mask: np.ndarray
    conversations: np.ndarray
    samples: np.ndarray


class SFTSplit:
    """One split (``train`` / ``valid``) of a ``midm data sft`` output, memory-mapped.

    ``sample(i)`` → list of (ids ``[L]``, loss_mask ``[L]``) per conversation of sample ``i``.
    """

    def __init__(self, root: str | Path, split: str) -> None:
        self.root = Path(root)
        self.index = read_index(root)
        entry = self.index["splits"].get(split)
        if entry is None:
            raise SFTDataError(f"{root}: no {split!r} split (have {sorted(self.index['splits'])})")
        self.split = split
        self.seq_length: int = self.index["seq_length"]
        self.shards: list[_Shard] = []
        starts = [0]
        for meta in entry["shards"]:
            d = self.root / meta["name"]
            try:
                arrays = {n: np.load(d / f"{n}.npy", mmap_mode="r", allow_pickle=False) for n in ARRAYS}
            except (OSError, ValueError) as err:
                raise SFTDataError(f"{d}: unreadable shard ({err}); re-run `midm data sft`") from err
            shard = _Shard(**arrays)
            if (len(shard.samples) - 1 != meta["samples"] or int(shard.conversations[-1]) != len(shard.tokens)
                    or len(shard.loss_mask) != len(shard.tokens)):
                raise SFTDataError(f"{d}: arrays do not match {INDEX_FILE}; the output is damaged — re-run "
                                   "`midm data sft`")
            self.shards.append(shard)
            starts.append(starts[-1] + meta["samples"])
        self._starts = np.asarray(starts, dtype=np.int64)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def sample(self, i: int) -> list[tuple[np.ndarray, np.ndarray]]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        s, local = self.shards[k], i - int(self._starts[k])
        out = []
        for c in range(int(s.samples[local]), int(s.samples[local + 1])):
            a, b = int(s.conversations[c]), int(s.conversations[c + 1])
            out.append((np.asarray(s.tokens[a:b], dtype=np.int64), np.asarray(s.loss_mask[a:b], dtype=np.int64)))
        return out

    def max_token_id(self) -> int:
        return max((int(s.tokens.max()) for s in self.shards if len(s.tokens)), default=-1)


__all__ = ["FORMAT", "INDEX_FILE", "SFTDataError", "SFTSplit", "VERSION", "read_index", "token_dtype", "write_shard"]
