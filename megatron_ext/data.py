"""Training data: Megatron ``.bin/.idx`` prefixes → GPTDataset blends → per-rank micro-batches.

Datasets come from Megatron-Core's ``BlendedMegatronDatasetBuilder`` + ``GPTDataset`` (the same
shuffling, blending and sample indices as Megatron-LM). Batches are addressed by the global sample
counter (``consumed_samples``), which the checkpoint stores, so a resumed run sees exactly the
batches the uninterrupted run would have seen.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from midm.errors import MidmError
from recipes import Recipe, RecipeError
from tokenizer.layout import EOS_ID


class DataError(MidmError, RuntimeError):
    """A data prefix that is missing, truncated or does not match the model."""


@dataclass(frozen=True)
class _DatasetTokenizer:
    """What GPTDataset needs from a tokenizer: the EOD id and the vocabulary size.

    No ``pad`` attribute on purpose: GPTDataset then pads with an id outside the vocabulary, so
    padding can never collide with a real token.
    """

    eod: int
    vocab_size: int

    @property
    def unique_identifiers(self) -> dict:  # part of the dataset cache key
        return {"class": "midm_dataset_tokenizer", "eod": self.eod, "vocab_size": self.vocab_size}


def resolve_blend(recipe: Recipe) -> tuple[list[str], list[float] | None]:
    """(prefixes, weights) from ``data.blend`` or ``data.blend_file``."""
    data = recipe.data
    if data.blend_file:
        path = Path(data.blend_file)
        if not path.is_file():
            raise DataError(f"data.blend_file {path} does not exist (write one with `midm data mix`)")
        spec = json.loads(path.read_text())
        pairs = spec.get("blend")
        if not pairs:
            raise DataError(f"{path}: expected a non-empty \"blend\": [[weight, prefix], …]")
        prefixes = [str(p) if Path(p).is_absolute() else str(path.parent / p) for _, p in pairs]
        return prefixes, [float(w) for w, _ in pairs]
    items = list(data.blend)
    if not items:
        raise DataError("data.blend is empty: point it at a Megatron prefix written by `midm data tokenize`, "
                        "e.g. --set data.blend=/data/ko_web_text_document")
    if len(items) == 1:
        return items, None
    if len(items) % 2:
        raise DataError(f"data.blend must be PREFIX or pairs of WEIGHT PREFIX, got {items}")
    try:
        weights = [float(w) for w in items[0::2]]
    except ValueError:
        raise DataError(f"data.blend pairs must be WEIGHT PREFIX (weight first), got {items}") from None
    return items[1::2], weights


def check_prefix(prefix: str, vocab_size: int, sample_docs: int = 2000) -> int:
    """Validate one prefix (files present, .bin consistent with .idx, ids < vocab); returns #docs."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    idx, bin_ = Path(prefix + ".idx"), Path(prefix + ".bin")
    missing = [str(p) for p in (idx, bin_) if not p.is_file()]
    if missing:
        raise DataError(f"data prefix {prefix!r}: missing {', '.join(missing)} (a prefix is the path without "
                        ".bin/.idx; create it with `midm data tokenize`)")
    try:
        dataset = IndexedDataset(prefix, mmap=True)
    except Exception as err:  # corrupt header / wrong version
        raise DataError(f"data prefix {prefix!r}: unreadable index ({err})") from err
    index = dataset.index
    itemsize = np.dtype(index.dtype).itemsize
    expected = int(index.sequence_pointers[-1]) + int(index.sequence_lengths[-1]) * itemsize if len(index) else 0
    if bin_.stat().st_size != expected:
        raise DataError(f"data prefix {prefix!r}: {bin_.name} has {bin_.stat().st_size} bytes but the index "
                        f"describes {expected}; the pair is truncated or mismatched — re-run `midm data tokenize`")
    step = max(1, len(index) // sample_docs)
    max_id = max((int(dataset[i].max()) for i in range(0, len(index), step) if index.sequence_lengths[i]), default=0)
    if max_id >= vocab_size:
        raise DataError(f"data prefix {prefix!r} contains token id {max_id} but model.vocab_size is {vocab_size}: "
                        "it was tokenized with a different tokenizer (set model.vocab_size to the tokenizer's "
                        "padded size)")
    return len(index)


def check_data(recipe: Recipe) -> list[str]:
    """Validate every prefix of the recipe's blend; returns the prefixes."""
    prefixes, _ = resolve_blend(recipe)
    for prefix in prefixes:
        check_prefix(prefix, recipe.model.vocab_size)
    return prefixes


def build_datasets(recipe: Recipe, train_samples: int, valid_samples: int, eod_id: int = EOS_ID):
    """(train, valid, test) GPTDatasets sized for the run (valid/test may be None)."""
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    prefixes, weights = resolve_blend(recipe)
    cache = recipe.data.cache_dir or os.path.join(recipe.logging.dir, recipe.logging.run_name, "data_cache")
    config = GPTDatasetConfig(
        random_seed=recipe.data.seed,
        sequence_length=recipe.data.seq_length,
        blend=(prefixes, weights),
        split=recipe.data.split,
        path_to_cache=cache,
        tokenizer=_DatasetTokenizer(eod=eod_id, vocab_size=recipe.model.vocab_size),
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        create_attention_mask=False,
        mid_level_dataset_surplus=0.05,
    )
    try:
        train, valid, test = BlendedMegatronDatasetBuilder(
            GPTDataset, [train_samples, valid_samples, 0], lambda: True, config).build()
    except (AssertionError, ValueError) as err:
        raise DataError(f"could not build datasets from {prefixes} with split {recipe.data.split!r}: {err}") from err
    if train is None:
        raise DataError(f"data.split {recipe.data.split!r} leaves no training documents")
    return train, valid, test


class MicroBatches:
    """This rank's micro-batches of one global batch, addressed by the global sample counter."""

    def __init__(self, dataset, recipe: Recipe, dp_rank: int, dp_size: int):
        t = recipe.train
        if t.global_batch_size % (t.micro_batch_size * dp_size):
            raise RecipeError(f"train.global_batch_size ({t.global_batch_size}) must be divisible by "
                              f"train.micro_batch_size × data-parallel size ({t.micro_batch_size} × {dp_size})")
        self.dataset = dataset
        self.gbs, self.mbs = t.global_batch_size, t.micro_batch_size
        self.dp_rank, self.dp_size = dp_rank, dp_size
        self.num_microbatches = self.gbs // (self.mbs * dp_size)
        self.workers = recipe.data.num_workers

    def indices(self, consumed_samples: int) -> list[list[int]]:
        """Dataset indices of this rank's micro-batches for the global batch starting at ``consumed_samples``."""
        per_rank = self.gbs // self.dp_size
        start = consumed_samples + self.dp_rank * per_rank
        n = len(self.dataset)
        flat = [(start + i) % n for i in range(per_rank)]
        return [flat[i:i + self.mbs] for i in range(0, per_rank, self.mbs)]

    def _sampler(self, consumed_samples: int) -> Iterator[list[int]]:
        while True:
            yield from self.indices(consumed_samples)
            consumed_samples += self.gbs

    def stream(self, consumed_samples: int) -> Iterator[dict]:
        """Endless micro-batches from ``consumed_samples`` on; the schedule takes ``num_microbatches`` a step.

        One persistent DataLoader, so worker processes prefetch across steps.
        """
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=self._sampler(consumed_samples),
                                             num_workers=self.workers, persistent_workers=self.workers > 0)
        return iter(loader)


def split_for_context_parallel(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """This context-parallel rank's share of a micro-batch: each ``[b, s]`` tensor becomes ``[b, s / CP]``.

    Megatron-Core's load-balanced split (``megatron.core.utils.get_batch_on_this_cp_rank``): the sequence is
    cut into ``2·CP`` chunks and rank ``r`` keeps chunks ``r`` and ``2·CP − 1 − r``, so every rank does the
    same causal-attention work. Identity when CP = 1.
    """
    from megatron.core import parallel_state as ps

    if ps.get_context_parallel_world_size() == 1:
        return batch
    from megatron.core.utils import get_batch_on_this_cp_rank

    return get_batch_on_this_cp_rank(batch, is_hybrid_cp=False, cp_group=ps.get_context_parallel_group())
