"""``SFTTrainer``: supervised fine-tuning on packed chat data — the pretraining ``Trainer`` with its
data seam and ``forward_step`` overridden (same loop, checkpoints, resume, signals, logging, validation).

What changes against pretraining, and why:

* **data** — ``midm data sft`` shards (``sft.dataset``) through :class:`~megatron_ext.sft_data.SFTDataset`
  instead of GPTDataset blends; validation is the held-out split, so ``val_loss`` is the
  held-out assistant-token loss.
* **attention and positions** — several conversations per sample, attention kept inside each and
  RoPE positions restarting (``packing.py``: TE's THD path on GPU, a block-diagonal causal mask on
  the local spec), on every pipeline stage, because every stage reads the boundaries from its own
  data iterator.
* **loss normalisation** — ``calculate_per_token_loss``: Megatron sums masked token losses over all
  micro-batches and data-parallel ranks and divides once by the global number of target tokens
  (Megatron-LM ``--calculate-per-token-loss``, the normalisation its SFT uses). With the default
  per-micro-batch mean, a micro-batch holding few assistant tokens would weigh as much as one
  holding many, and packed and unpacked runs would optimise different objectives.
* **initial weights** — ``checkpoint.load`` is the base model; the run adopts that checkpoint's model
  geometry (the recipe's own ``model`` section is only a default), with a fresh optimizer.
* **length** — ``sft.epochs`` sets ``train.steps`` from the dataset's sample count and
  ``sft.warmup_fraction`` the warmup; ``data.seq_length`` is taken from the data (it was packed for it).
"""
from __future__ import annotations

import copy
import math
from functools import partial

import torch

from data_prep.sft.shards import SFTDataError, SFTSplit, read_index
from megatron_ext import packing
from megatron_ext.model import te_available
from megatron_ext.posttrain import adopt_model_and_data, replaced_steps
from megatron_ext.trainer import Trainer, lm_loss
from recipes import Recipe, RecipeError


def sft_recipe(recipe: Recipe) -> tuple[Recipe, list[str]]:
    """The recipe an SFT run trains with, and notes on what was derived (no process group needed).

    Raises:
        RecipeError: the recipe has no ``sft`` section or no ``sft.dataset``.
        SFTDataError: the dataset is missing, damaged or does not fit the model.
        CheckpointError: ``checkpoint.load`` is not a checkpoint.
    """
    if recipe.sft is None or not recipe.sft.dataset:
        raise RecipeError(f"recipe {recipe.name!r} needs sft.dataset (the output of `midm data sft`): pass "
                          "--data DIR or --set sft.dataset=DIR, and use an *_sft recipe")
    out = copy.deepcopy(recipe)
    index = read_index(out.sft.dataset)
    notes = adopt_model_and_data(out, index, out.sft.dataset, initial="base", built_for="data was packed for",
                                 error=SFTDataError, made_by="midm data sft")
    train_samples = sum(s["samples"] for s in index["splits"]["train"]["shards"])
    if out.sft.epochs is not None:
        steps = max(1, math.ceil(out.sft.epochs * train_samples / out.train.global_batch_size))
        notes.append(f"train.steps = {steps} ({out.sft.epochs} epochs of {train_samples} samples at global batch "
                     f"{out.train.global_batch_size}){replaced_steps(out.train.steps, steps, 'sft')}")
        out.train.steps = steps
    if out.sft.warmup_fraction is not None:
        out.scheduler.warmup_steps = round(out.sft.warmup_fraction * out.train.steps)
    return out, notes


class SFTTrainer(Trainer):
    """``Trainer`` over packed chat data with assistant-only, per-token-normalised loss."""

    def __init__(self, recipe: Recipe, resume: str = "auto"):
        recipe, notes = sft_recipe(recipe)
        self.use_thd = te_available()  # the layer spec build_model picks: TE on GPU, local otherwise
        super().__init__(recipe, resume)
        for note in notes:
            self._print(note)
        # one RoPE patch per model chunk (several with virtual pipeline stages); THD restarts positions itself
        self.ropes = {} if self.use_thd else {id(c): packing.PositionIdsRoPE(packing.unwrap_gpt(c)) for c in self.model}
        self._print(f"SFT on {recipe.sft.dataset}: attention kept inside each conversation via "
                    + ("Transformer Engine THD (cu_seqlens)" if self.use_thd else "a block-diagonal causal mask"))

    def transformer_overrides(self) -> dict:
        return {"calculate_per_token_loss": True}

    # ---------------------------------------------------------------- data seam
    def check_data(self) -> None:
        for split in ("train", "valid"):
            if split not in read_index(self.recipe.sft.dataset)["splits"]:
                if split == "train":
                    raise SFTDataError(f"{self.recipe.sft.dataset}: no train split")
                continue
            data = SFTSplit(self.recipe.sft.dataset, split)
            top = data.max_token_id()
            if top >= self.recipe.model.vocab_size:
                raise SFTDataError(f"{self.recipe.sft.dataset}: token id {top} >= model.vocab_size "
                                   f"{self.recipe.model.vocab_size}")

    def build_datasets(self, train_samples: int, valid_samples: int):
        from megatron_ext.sft_data import SFTDataset

        root, s, seed = self.recipe.sft.dataset, self.recipe.data.seq_length, self.recipe.data.seed
        train = SFTDataset(SFTSplit(root, "train"), train_samples, s, shuffle=True, seed=seed)
        valid = None
        if "valid" in read_index(root)["splits"] and valid_samples > 0:
            valid = SFTDataset(SFTSplit(root, "valid"), valid_samples, s, shuffle=False, seed=seed)
        return train, valid

    # ---------------------------------------------------------------- step
    def forward_step(self, data_iterator, model):
        batch = next(data_iterator)
        dev = torch.cuda.current_device() if torch.cuda.is_available() else "cpu"
        inputs = packing.prepare(batch, dev, use_thd=self.use_thd)
        output = packing.packed_forward(model, inputs, self.ropes.get(id(model)))
        return output, partial(lm_loss, inputs.loss_mask)

    def _run_batches(self, stream, num_microbatches: int, forward_only: bool):
        if not self.use_thd:
            return super()._run_batches(stream, num_microbatches, forward_only)
        from megatron.core.pipeline_parallel import get_forward_backward_func

        # THD flattens a micro-batch to one [1, b·s] row: that is the shape pipeline stages exchange.
        mbs, s = self.recipe.train.micro_batch_size, self.recipe.data.seq_length
        return get_forward_backward_func()(
            forward_step_func=self.forward_step, data_iterator=stream, model=self.model,
            num_microbatches=num_microbatches, seq_length=mbs * s, micro_batch_size=1, forward_only=forward_only)


__all__ = ["SFTTrainer", "sft_recipe"]
