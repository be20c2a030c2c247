"""Preference tuning (DPO) of the instruct models: ``midm dpo --recipe NAME --reference SFT_CKPT --data PREFS``.

The policy starts from the SFT checkpoint (``checkpoint.load``, default: the reference itself, whose
model geometry the run adopts) and the frozen reference is that same SFT model. Mi:dm 2.0 does not
publish its preference-tuning settings; these are the published ones we follow:

* β = 0.1 with the sigmoid loss on summed sequence log-probabilities — Rafailov et al. (arXiv
  2305.18290, App. B: β = 0.1 unless noted), Zephyr (Tunstall et al., arXiv 2310.16944) and Tülu 2
  (Ivison et al., arXiv 2311.10702).
* peak LR 5e-7, AdamW without weight decay, linear schedule with 10% warmup, one epoch, 128 pairs per
  global batch, 2,048-token sequences — Tülu 3's 8B DPO (Lambert et al., arXiv 2411.15124, DPO
  hyperparameter table; it uses length-normalised DPO, we keep the original summed form, as Zephyr
  and Tülu 2 do, at the same LR). Zephyr also trains with AdamW and no weight decay.
* bf16 without FP8: the loss is driven by small log-probability *differences*; no published DPO
  recipe trains in FP8.
"""
from __future__ import annotations

from dataclasses import replace

from recipes.config import DPOConfig, OptimizerConfig, PrecisionConfig, Recipe, SchedulerConfig
from recipes.midm_base import midm_base
from recipes.midm_mini import midm_mini
from recipes.tiny import tiny_mini


def _as_dpo(recipe: Recipe, name: str) -> Recipe:
    recipe.name = name
    recipe.precision = replace(recipe.precision, fp8=None)
    recipe.optimizer = OptimizerConfig(lr=5e-7, min_lr=0.0, weight_decay=0.0)
    recipe.scheduler = SchedulerConfig(style="linear", warmup_steps=0)
    recipe.data = replace(recipe.data, seq_length=2048)
    recipe.train = replace(recipe.train, global_batch_size=128, micro_batch_size=1, eval_interval=200, eval_steps=4)
    recipe.checkpoint = replace(recipe.checkpoint, save_interval=200)
    recipe.logging = replace(recipe.logging, run_name=name, log_interval=1)
    recipe.dpo = DPOConfig(beta=0.1, sft_loss_weight=0.0, epochs=1.0, warmup_fraction=0.1)
    return recipe


def midm_base_dpo() -> Recipe:
    """Base-inst's preference stage (11.5B; TP=4 with sequence parallelism, as ``midm_base``)."""
    return _as_dpo(midm_base(), "midm_base_dpo")


def midm_mini_dpo() -> Recipe:
    """Mini-inst's preference stage (2.3B, tied embeddings; TP=1 + distributed optimizer)."""
    recipe = _as_dpo(midm_mini(), "midm_mini_dpo")
    recipe.train.micro_batch_size = 2
    return recipe


def tiny_dpo() -> Recipe:
    """CPU scale: the ``tiny_mini`` geometry (``tiny_sft``'s), fp32, ~100 Korean safety pairs (SQuARe).

    β, the loss, the optimizer and the schedule shape are the published ones; the LR and the epochs are
    scaled to a 0.4M-parameter model that must move within a minute (5e-7 would not change it).
    """
    recipe = _as_dpo(tiny_mini(), "tiny_dpo")
    recipe.precision = PrecisionConfig(dtype="fp32", fp8=None)
    recipe.optimizer = replace(recipe.optimizer, lr=1e-4)
    recipe.data = replace(recipe.data, seq_length=256, num_workers=0)
    recipe.train = replace(recipe.train, global_batch_size=8, micro_batch_size=2, eval_interval=10, eval_steps=2)
    recipe.checkpoint = replace(recipe.checkpoint, save_interval=10, keep_last=None)
    recipe.dpo = replace(recipe.dpo, epochs=3.0)
    return recipe
