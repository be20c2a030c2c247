"""Map-style SFT datasets over ``midm data sft`` shards: packed samples with their boundaries.

Each sample is a dict of tensors (what ``SFTTrainer.forward_step`` and ``packing.prepare`` read):

    tokens, labels        [s] int64   labels[i] = tokens[i + 1] inside a conversation, pad elsewhere
    loss_mask             [s] float32 1 where labels[i] is an assistant token or its <|eot_id|>
    position_ids          [s] int64   restarting at 0 in every conversation (and in the tail padding)
    cu_seqlens            [s + 1] int32 segment boundaries, right-padded with s (Megatron-LM's layout)
    max_seqlen            []  int32   longest segment

The last token of a conversation predicts nothing (its label would be the next conversation's
first token), so packed and unpacked samples carry exactly the same targets. The training split
is visited in a fresh seeded permutation every epoch (the sample index is a pure function of the
seed and the global sample counter, so resume sees the same batches); validation is read in order.
"""
from __future__ import annotations

import numpy as np
import torch

from data_prep.sft.shards import SFTSplit


def sample_arrays(conversations: list[tuple[np.ndarray, np.ndarray]], seq_length: int, pad_id: int) -> dict:
    """The tensors of one sample from its conversations' (ids ``[L]``, mask ``[L]``); see the module doc.

    Raises ValueError when the conversations exceed ``seq_length``.
    """
    s = seq_length
    tokens = np.full(s, pad_id, dtype=np.int64)
    labels = np.full(s, pad_id, dtype=np.int64)
    loss_mask = np.zeros(s, dtype=np.float32)
    positions = np.zeros(s, dtype=np.int64)
    cu = [0]
    for ids, mask in conversations:
        a, n = cu[-1], len(ids)
        if a + n > s:
            raise ValueError(f"sample holds {a + n} tokens > seq_length {s}")
        tokens[a:a + n] = ids
        labels[a:a + n - 1] = ids[1:]
        loss_mask[a:a + n - 1] = mask[1:]
        positions[a:a + n] = np.arange(n)
        cu.append(a + n)
    if cu[-1] < s:  # tail padding: a segment of its own
        positions[cu[-1]:] = np.arange(s - cu[-1])
        cu.append(s)
    cu_seqlens = np.full(s + 1, s, dtype=np.int32)
    cu_seqlens[:len(cu)] = cu
    return {"tokens": torch.from_numpy(tokens), "labels": torch.from_numpy(labels),
            "loss_mask": torch.from_numpy(loss_mask), "position_ids": torch.from_numpy(positions),
            "cu_seqlens": torch.from_numpy(cu_seqlens),
            "max_seqlen": torch.tensor(int(np.diff(cu).max()), dtype=torch.int32)}


class SFTDataset(torch.utils.data.Dataset):
    """``num_samples`` samples of one split: epoch-wise seeded permutations (train) or in order (valid)."""

    def __init__(self, split: SFTSplit, num_samples: int, seq_length: int, *, shuffle: bool, seed: int) -> None:
        if len(split) == 0:
            raise ValueError(f"{split.root}: split {split.split!r} is empty")
        self.split, self.seq_length = split, seq_length
        self.pad_id = int(split.index["pad_id"])
        n = len(split)
        if shuffle:
            epochs = -(-num_samples // n)
            rng = np.random.default_rng(seed)
            self.order = np.concatenate([rng.permutation(n) for _ in range(epochs)])[:num_samples]
        else:
            self.order = np.arange(num_samples) % n

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, i: int) -> dict:
        return sample_arrays(self.split.sample(int(self.order[i])), self.seq_length, self.pad_id)


__all__ = ["SFTDataset", "sample_arrays"]
