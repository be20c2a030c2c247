"""Calibration data and single-process forward passes for importance scoring and quick losses.

Used by ``midm prune`` (Minitron importance, fold choice), ``midm dus --map scored:L`` (block
importance) and the modelopt cross-check.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from megatron_ext.loading import SurgeryError, device


def calibration_tokens(prefix: str, samples: int, seq_length: int, vocab_size: int, seed: int = 1234) -> torch.Tensor:
    """``[samples, seq_length]`` token windows drawn from a Megatron ``.bin/.idx`` prefix.

    Windows start at the beginning of documents picked uniformly at random (seeded) and run on
    through the following documents until full, so every sample is real, contiguous text; only
    the documents touched are read (memory-mapped), which keeps this cheap on huge prefixes.

    Raises:
        SurgeryError: the prefix is missing/invalid or holds fewer tokens than one window.
    """
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    from megatron_ext.data import DataError, check_prefix

    try:
        num_docs = check_prefix(prefix, vocab_size)
    except DataError as err:
        raise SurgeryError(f"--calib: {err}") from err
    dataset = IndexedDataset(prefix, mmap=True)
    total = int(np.sum(dataset.index.sequence_lengths, dtype=np.int64))
    if total < seq_length:
        raise SurgeryError(f"--calib {prefix}: {total} tokens, fewer than one window of {seq_length}")
    rng = np.random.default_rng(seed)
    starts = rng.choice(num_docs, size=samples, replace=samples > num_docs)
    out = torch.empty(samples, seq_length, dtype=torch.long)
    for row, doc in enumerate(starts):
        pieces, have, d = [], 0, int(doc)
        while have < seq_length:
            piece = np.asarray(dataset[d % num_docs], dtype=np.int64)[: seq_length - have]
            pieces.append(piece)
            have += len(piece)
            d += 1
        out[row] = torch.from_numpy(np.concatenate(pieces))
    return out


def iterate_batches(tokens: torch.Tensor, micro_batch_size: int) -> Iterator[torch.Tensor]:
    """Consecutive ``[≤ micro_batch_size, s]`` slices of ``tokens``."""
    for i in range(0, tokens.shape[0], micro_batch_size):
        yield tokens[i:i + micro_batch_size]


@torch.no_grad()
def forward(model: torch.nn.Module, tokens: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Logits ``[b, s, V]`` (or per-token losses ``[b, s]`` when ``labels`` is given) on one process."""
    dev = device()
    tokens = tokens.to(dev)
    positions = torch.arange(tokens.shape[1], device=dev).unsqueeze(0).expand_as(tokens)
    return model(tokens, positions, attention_mask=None, labels=None if labels is None else labels.to(dev))


def lm_loss(model: torch.nn.Module, tokens: torch.Tensor, micro_batch_size: int) -> float:
    """Mean next-token cross-entropy (nats/token) of ``model`` on calibration windows ``[n, s+1]``."""
    total, count = 0.0, 0
    for batch in iterate_batches(tokens, micro_batch_size):
        losses = forward(model, batch[:, :-1], labels=batch[:, 1:])
        total += float(losses.float().sum())
        count += losses.numel()
    return total / max(count, 1)
