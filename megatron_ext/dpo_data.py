"""Preference pairs for ``midm dpo``: ``midm data prefs`` output → ``[2, seq_length]`` samples.

Each split directory (``train``, ``valid``) holds two Megatron indexed datasets with the same
lengths — ``tokens`` (ids) and ``loss_mask`` (0/1) — in which each document is one pair: sequence 0
the chosen side, sequence 1 the rejected side (``data_prep/prefs/build.py`` writes them; the names
below are that contract, which a test round-trips). They are read here with Megatron-Core's
``IndexedDataset``.

One dataset sample is one *pair*, so the ``MicroBatches`` sampler (and ``consumed_samples`` in the
checkpoint) counts pairs and the two sides of a pair always travel together: every field of a
sample is ``[2, seq_length]`` (row 0 chosen, row 1 rejected), a micro-batch ``[b, 2, seq_length]``,
and :func:`pairs_to_rows` lays it out as ``[2b, seq_length]`` with every chosen row first.
Training order is a fresh permutation of the training pairs each epoch (``data.seed``), a pure
function of the sample index, which keeps resume exact. Each evaluation reads the first
``train.eval_steps × train.global_batch_size`` held-out pairs in order (wrapping around when the
split is smaller), the same ones every time.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from megatron_ext.data import DataError
# the format's names and its index reader live in the torch-free module `midm slurm submit` uses too
from megatron_ext.posttrain_check import INDEX_FILE, LOSS_MASK, TOKENS  # noqa: F401
from megatron_ext.posttrain_check import PREFS_FORMAT as FORMAT  # noqa: F401
from megatron_ext.posttrain_check import PREFS_VERSION as VERSION  # noqa: F401
from megatron_ext.posttrain_check import read_prefs_index as read_index  # noqa: F401


def check_split(directory: Path, vocab_size: int, seq_length: int) -> int:
    """Validate one split directory against the model; returns its number of pairs.

    Raises:
        DataError: files missing, truncated or inconsistent, ids outside the vocabulary, or a side
            longer than ``seq_length + 1`` tokens.
    """
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    from megatron_ext.data import check_prefix

    check_prefix(str(directory / TOKENS), vocab_size)
    tokens = IndexedDataset(str(directory / TOKENS), mmap=True)
    lengths = tokens.sequence_lengths
    if len(lengths) % 2 or not np.array_equal(tokens.document_indices, np.arange(0, len(lengths) + 1, 2)):
        raise DataError(f"{directory}: {TOKENS} is not made of (chosen, rejected) pairs; re-run `midm data prefs`")
    check_prefix(str(directory / LOSS_MASK), 2)
    masks = IndexedDataset(str(directory / LOSS_MASK), mmap=True)  # kept alive: its arrays view its mmap
    if not np.array_equal(masks.sequence_lengths, lengths):
        raise DataError(f"{directory}: {LOSS_MASK} and {TOKENS} disagree in length; re-run `midm data prefs`")
    longest = int(lengths.max()) if len(lengths) else 0
    if longest > seq_length + 1:
        raise DataError(f"{directory}: a side has {longest} tokens but data.seq_length is {seq_length} (at most "
                        f"seq_length + 1 tokens fit); re-run `midm data prefs --seq-length {longest - 1}`")
    return len(lengths) // 2


class PreferencePairs(torch.utils.data.Dataset):
    """Pairs ``order[i]`` of one split directory as dicts of ``[2, seq_length]`` tensors.

    Fields (what ``DPOTrainer.forward_step`` reads): ``tokens`` and ``labels`` (int64; the labels are
    the ids shifted by one), ``loss_mask`` (float32, 1 on response targets), ``position_ids``. Right
    padding with ``pad_id`` (masked; causal attention never lets a real token see it).
    """

    def __init__(self, directory: Path, order: np.ndarray, seq_length: int, pad_id: int) -> None:
        from megatron.core.datasets.indexed_dataset import IndexedDataset

        self.tokens = IndexedDataset(str(directory / TOKENS), mmap=True)
        self.masks = IndexedDataset(str(directory / LOSS_MASK), mmap=True)
        self.order = np.asarray(order, dtype=np.int64)
        self.seq_length, self.pad_id = seq_length, pad_id

    def __len__(self) -> int:
        return len(self.order)

    def _side(self, seq: int) -> dict[str, torch.Tensor]:
        ids = torch.from_numpy(self.tokens[seq].astype(np.int64))
        mask = torch.from_numpy(self.masks[seq].astype(np.float32))
        s, n = self.seq_length, len(ids) - 1
        tokens = torch.full((s,), self.pad_id, dtype=torch.int64)
        labels = torch.full((s,), self.pad_id, dtype=torch.int64)
        loss_mask = torch.zeros(s, dtype=torch.float32)
        tokens[:n], labels[:n], loss_mask[:n] = ids[:-1], ids[1:], mask[1:]
        return {"tokens": tokens, "labels": labels, "loss_mask": loss_mask}

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        pair = int(self.order[i])
        sides = [self._side(2 * pair), self._side(2 * pair + 1)]
        out = {k: torch.stack([side[k] for side in sides]) for k in sides[0]}
        out["position_ids"] = torch.arange(self.seq_length, dtype=torch.int64).expand(2, -1).clone()
        return out


def pairs_to_rows(x: torch.Tensor) -> torch.Tensor:
    """``[b, 2, s]`` → ``[2b, s]``: rows ``0..b-1`` chosen, ``b..2b-1`` rejected."""
    return x.transpose(0, 1).reshape(-1, *x.shape[2:])


def epoch_order(n: int, samples: int, seed: int) -> np.ndarray:
    """``0..n-1`` in a fresh permutation each epoch (RandomState(seed)), concatenated to ≥ ``samples`` items."""
    rng = np.random.RandomState(seed)
    epochs = max(1, -(-samples // n))
    return np.concatenate([rng.permutation(n) for _ in range(epochs)])


def build_pair_datasets(root: str | Path, seq_length: int, seed: int, train_samples: int, valid_samples: int):
    """(train, valid) :class:`PreferencePairs` (valid None when there is no validation split or it is empty).

    Raises:
        DataError: no training pairs.
    """
    root = Path(root)
    index = read_index(root)
    n_train, n_valid = index["splits"]["train"]["pairs"], index["splits"].get("valid", {}).get("pairs", 0)
    if not n_train:
        raise DataError(f"{root}: no training pairs (every prompt went to validation; lower --valid-fraction)")
    train = PreferencePairs(root / "train", epoch_order(n_train, train_samples, seed), seq_length, index["pad_id"])
    valid = None
    if n_valid and valid_samples > 0:
        valid = PreferencePairs(root / "valid", np.arange(n_valid), seq_length, index["pad_id"])
    return train, valid
