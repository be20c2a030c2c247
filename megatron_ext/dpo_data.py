"""Preference pairs for ``midm dpo``: ``midm data prefs`` directories → ``[2, seq_length]`` samples.

A directory holds two Megatron indexed datasets with the same lengths — ``tokens`` (ids) and
``loss_mask`` (0/1) — in which each document is one pair: sequence 0 the chosen side, sequence 1
the rejected side (``data_prep/prefs/build.py`` writes them). Here they are read with Megatron-Core's
``IndexedDataset``.

One dataset sample is one *pair*, so the ``MicroBatches`` sampler (and ``consumed_samples`` in the
checkpoint) counts pairs and the chosen and rejected sides of a pair always travel together:
each field of a sample is ``[2, seq_length]`` (row 0 chosen, row 1 rejected) and a micro-batch is
``[micro_batch_size, 2, seq_length]``; :func:`pairs_to_rows` lays it out as
``[2 · micro_batch_size, seq_length]`` with every chosen row first.

Splits follow ``data.split`` like Megatron's GPT datasets: contiguous ranges of the pairs (the
directories of ``data.blend`` concatenated in order), so held-out pairs are the ones at the end.
Training order is a fresh permutation of the training pairs each epoch, seeded by ``data.seed``:
a pure function of the sample index, which keeps resume exact.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from megatron_ext.data import DataError
from recipes import Recipe
from tokenizer.layout import PAD_ID

# The contract with data_prep/prefs/build.py (a test round-trips it).
FORMAT = "midm-prefs-1"
SUMMARY_FILE = "summary.json"
TOKENS, LOSS_MASK = "tokens", "loss_mask"


def prefs_dirs(recipe: Recipe) -> list[Path]:
    """The preference directories of ``data.blend`` (``data.blend_file`` and weights do not apply).

    Raises:
        DataError: nothing given, weights given, or a blend file set.
    """
    data = recipe.data
    if data.blend_file:
        raise DataError("midm dpo reads `midm data prefs` directories from data.blend, not data.blend_file")
    if not data.blend:
        raise DataError("data.blend is empty: point it at `midm data prefs` output, "
                        "e.g. --set data.blend=/data/prefs/square")
    if any(_is_number(item) for item in data.blend):
        raise DataError(f"data.blend for DPO lists preference directories (concatenated in order), not weights: "
                        f"{data.blend}")
    return [Path(item) for item in data.blend]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return not Path(text).exists()


def check_prefs_dir(path: Path, vocab_size: int, seq_length: int) -> int:
    """Validate one ``midm data prefs`` directory against the model; returns its number of pairs.

    Raises:
        DataError: not such a directory, files truncated or inconsistent, ids outside the
            vocabulary, or a side longer than ``seq_length + 1`` tokens.
    """
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    from megatron_ext.data import check_prefix

    summary_path = path / SUMMARY_FILE
    if not summary_path.is_file():
        raise DataError(f"{path}: no {SUMMARY_FILE}; write preference data with "
                        f"`midm data prefs IN… {path} --tokenizer DIR`")
    summary = json.loads(summary_path.read_text())
    if summary.get("format") != FORMAT:
        raise DataError(f"{path}: format {summary.get('format')!r}, expected {FORMAT!r} (re-run `midm data prefs`)")
    check_prefix(str(path / TOKENS), vocab_size)
    tokens = IndexedDataset(str(path / TOKENS), mmap=True)
    lengths = tokens.sequence_lengths
    if len(lengths) % 2 or not np.array_equal(tokens.document_indices, np.arange(0, len(lengths) + 1, 2)):
        raise DataError(f"{path}: {TOKENS} is not made of (chosen, rejected) pairs; re-run `midm data prefs`")
    check_prefix(str(path / LOSS_MASK), 2)
    masks = IndexedDataset(str(path / LOSS_MASK), mmap=True)
    if not np.array_equal(masks.sequence_lengths, lengths):
        raise DataError(f"{path}: {LOSS_MASK} and {TOKENS} disagree in length; re-run `midm data prefs`")
    longest = int(lengths.max()) if len(lengths) else 0
    if longest > seq_length + 1:
        raise DataError(f"{path}: a side has {longest} tokens but data.seq_length is {seq_length} (at most "
                        f"seq_length + 1 tokens fit); set data.seq_length={longest - 1} or re-run `midm data prefs "
                        f"--seq-length {seq_length}`")
    return len(lengths) // 2


def split_ranges(split: str, n: int) -> list[tuple[int, int]]:
    """Contiguous (start, end) of train/valid/test over ``n`` items from ``"a,b,c"`` proportions.

    Raises:
        DataError: a malformed ``data.split``.
    """
    try:
        weights = [float(x) for x in split.replace("/", ",").split(",")]
    except ValueError:
        raise DataError(f"data.split {split!r} must be comma-separated proportions, e.g. 98,2,0") from None
    weights = (weights + [0.0, 0.0, 0.0])[:3]
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise DataError(f"data.split {split!r} needs non-negative proportions with a positive sum")
    bounds = [0]
    for w in weights:
        bounds.append(bounds[-1] + int(round(w / sum(weights) * n)))
    bounds[-1] = n
    bounds = [min(b, n) for b in bounds]
    return [(bounds[i], bounds[i + 1]) for i in range(3)]


class PreferencePairs(torch.utils.data.Dataset):
    """Pairs ``order[i]`` of the concatenated directories as dicts of ``[2, seq_length]`` tensors.

    Fields (what ``DPOTrainer.forward_step`` reads): ``tokens`` and ``labels`` (int64; labels are the
    tokens shifted by one), ``loss_mask`` (float32, 1 on response targets), ``position_ids``.
    Right padding with ``<pad>`` (masked; causal attention never lets a real token see it).
    """

    def __init__(self, dirs: list[Path], order: np.ndarray, seq_length: int) -> None:
        from megatron.core.datasets.indexed_dataset import IndexedDataset

        self.tokens = [IndexedDataset(str(d / TOKENS), mmap=True) for d in dirs]
        self.masks = [IndexedDataset(str(d / LOSS_MASK), mmap=True) for d in dirs]
        sizes = [len(t.sequence_lengths) // 2 for t in self.tokens]
        self.starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.order = np.asarray(order, dtype=np.int64)
        self.seq_length = seq_length

    def __len__(self) -> int:
        return len(self.order)

    def _side(self, d: int, seq: int) -> dict[str, torch.Tensor]:
        ids = torch.from_numpy(self.tokens[d][seq].astype(np.int64))
        mask = torch.from_numpy(self.masks[d][seq].astype(np.float32))
        s, n = self.seq_length, len(ids) - 1
        tokens = torch.full((s,), PAD_ID, dtype=torch.int64)
        labels = torch.full((s,), PAD_ID, dtype=torch.int64)
        loss_mask = torch.zeros(s, dtype=torch.float32)
        tokens[:n], labels[:n], loss_mask[:n] = ids[:-1], ids[1:], mask[1:]
        return {"tokens": tokens, "labels": labels, "loss_mask": loss_mask}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        pair = int(self.order[i])
        d = int(np.searchsorted(self.starts, pair, side="right") - 1)
        local = pair - int(self.starts[d])
        sides = [self._side(d, 2 * local), self._side(d, 2 * local + 1)]
        out = {k: torch.stack([side[k] for side in sides]) for k in sides[0]}
        out["position_ids"] = torch.arange(self.seq_length, dtype=torch.int64).expand(2, -1).clone()
        return out


def pairs_to_rows(x: torch.Tensor) -> torch.Tensor:
    """``[b, 2, s]`` → ``[2b, s]``: rows ``0..b-1`` chosen, ``b..2b-1`` rejected."""
    return x.transpose(0, 1).reshape(-1, *x.shape[2:])


def epoch_order(indices: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """``indices`` reshuffled every epoch (RandomState(seed)), concatenated to at least ``samples`` items."""
    if not len(indices):
        return np.zeros(0, dtype=np.int64)
    rng = np.random.RandomState(seed)
    epochs = max(1, -(-samples // len(indices)))
    return np.concatenate([rng.permutation(indices) for _ in range(epochs)])


def build_pair_datasets(recipe: Recipe, train_samples: int, valid_samples: int):
    """(train, valid) :class:`PreferencePairs` (valid None when the split leaves no held-out pairs).

    Raises:
        DataError: the split leaves no training pairs.
    """
    dirs = prefs_dirs(recipe)
    total = sum(num_pairs(d) for d in dirs)
    (t0, t1), (v0, v1), _ = split_ranges(recipe.data.split, total)
    if t1 <= t0:
        raise DataError(f"data.split {recipe.data.split!r} leaves no training pairs out of {total}")
    s = recipe.data.seq_length
    train = PreferencePairs(dirs, epoch_order(np.arange(t0, t1), train_samples, recipe.data.seed), s)
    valid = PreferencePairs(dirs, np.arange(v0, v1), s) if v1 > v0 and valid_samples > 0 else None
    return train, valid


def num_pairs(path: Path) -> int:
    """Pairs in one ``midm data prefs`` directory (half its sequences)."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    return len(IndexedDataset(str(path / TOKENS), mmap=True).sequence_lengths) // 2
