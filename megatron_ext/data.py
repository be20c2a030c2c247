"""Training data: Megatron ``.bin/.idx`` prefixes → GPTDataset blends → per-rank micro-batches.

Datasets come from Megatron-Core's ``BlendedMegatronDatasetBuilder`` + ``GPTDataset`` (the same
shuffling, blending and sample indices as Megatron-LM). Batches are addressed by the global sample
counter (``consumed_samples``), which the checkpoint stores, so a resumed run sees exactly the
batches the uninterrupted run would have seen.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from typing import Iterator

import torch

from megatron_ext.data_check import (BUILT_SPLITS, SPLIT_NAMES, DataError, check_data, check_prefix,
                                     resolve_blend)
from recipes import Recipe, RecipeError
from tokenizer.layout import EOS_ID

__all__ = ["DataError", "MicroBatches", "STOP_SIGNALS", "build_datasets", "check_data", "check_prefix",
           "ignore_stop_signals", "resolve_blend"]


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


def build_datasets(recipe: Recipe, train_samples: int, valid_samples: int, eod_id: int = EOS_ID):
    """(train, valid, None) GPTDatasets sized for the run (valid is None when its share is 0).

    The test share of ``data.split`` is held out but never built: the trainer does not read it, and
    building it only adds a way to hang (an empty split). ``check_data`` checks the same splits.
    Raises ``DataError``.
    """
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
    # Same train/valid bounds as Megatron-LM; the test entry is dropped (None: not built).
    config.split_matrix = [bounds if name in BUILT_SPLITS else None
                           for name, bounds in zip(SPLIT_NAMES, config.split_matrix)]
    try:
        train, valid, _ = BlendedMegatronDatasetBuilder(
            GPTDataset, [train_samples, valid_samples, 0], lambda: True, config).build()
    except (AssertionError, ValueError) as err:
        raise DataError(f"could not build datasets from {prefixes} with split {recipe.data.split!r}: {err}") from err
    if train is None:
        raise DataError(f"data.split {recipe.data.split!r} leaves no training documents")
    return train, valid, None


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

        One persistent DataLoader, so worker processes prefetch across steps. Its workers ignore the
        job's stop signals (see :func:`ignore_stop_signals`).
        """
        loader = torch.utils.data.DataLoader(self.dataset, batch_sampler=self._sampler(consumed_samples),
                                             num_workers=self.workers, persistent_workers=self.workers > 0,
                                             worker_init_fn=ignore_stop_signals if self.workers else None)
        if not self.workers:
            return iter(loader)
        # Workers are forked inside iter(): with the stop signals blocked meanwhile, a signal that lands
        # before a worker has run ignore_stop_signals stays pending and is then discarded there (the
        # child inherits the mask), while this process receives it as soon as the mask is restored.
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            return iter(loader)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


# What Slurm (time limit, preemption, scancel), torchrun and a terminal send to every process of a job.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGINT)


def ignore_stop_signals(worker_id: int | None = None) -> None:
    """``worker_init_fn`` of every DataLoader: a data worker ignores the job's stop signals.

    Slurm and ``kill -TERM -- -PGID`` signal every process of a job, workers included. A worker
    killed by SIGTERM makes the DataLoader raise ("DataLoader worker … killed by signal") in the
    middle of the step, before the trainer can checkpoint; ignoring the signal leaves the decision
    to the trainer (checkpoint at the step boundary, exit 75). Workers still end with their parent
    (PyTorch's worker watchdog) or on SIGKILL.
    """
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


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
