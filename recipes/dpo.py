"""Preference tuning (DPO) of the instruct models: ``midm dpo --recipe NAME --reference SFT_CKPT``.

The policy starts from the SFT checkpoint (``checkpoint.load``, default: the reference itself) and
the frozen reference is that same SFT model. Settings, with their sources:

* β = 0.1, sigmoid loss on summed sequence log-probabilities — Rafailov et al. (arXiv 2305.18290,
  App. B) and Zephyr (Tunstall et al., arXiv 2310.16944), also Tülu 2 (arXiv 2311.10702).
* peak LR 5e-7, AdamW without weight decay, 10% linear warmup then decay to 0 — Zephyr §4 and
  Tülu 3 (Lambert et al., arXiv 2411.15124, 8B DPO: LR 5e-7, warmup ratio 0.1).
* 128 pairs per global batch, 2,048-token sequences, one epoch — Tülu 3's 8B DPO
  (≈ 271k pairs / 128 ≈ 2,100 steps; set ``train.steps`` to one epoch of your preference set).
* bf16 without FP8: log-probability *differences* drive the loss; no published DPO recipe uses FP8.
"""
from dataclasses import replace

from recipes.config import DPOConfig, OptimizerConfig, PrecisionConfig, Recipe, SchedulerConfig
from recipes.midm_base import midm_base
from recipes.midm_mini import midm_mini
from recipes.tiny import tiny_mini

STEPS = 2_000


def _dpo(recipe: Recipe, name: str, steps: int = STEPS, global_batch_size: int = 128) -> Recipe:
    recipe.name = name
    recipe.precision = PrecisionConfig(dtype=recipe.precision.dtype, fp8=None)
    recipe.optimizer = OptimizerConfig(lr=5e-7, min_lr=0.0, weight_decay=0.0)
    recipe.scheduler = SchedulerConfig(style="cosine", warmup_steps=steps // 10)
    recipe.data = replace(recipe.data, seq_length=2048, split="98,2,0")
    recipe.train = replace(recipe.train, steps=steps, global_batch_size=global_batch_size, micro_batch_size=1,
                           eval_interval=200, eval_steps=4)
    recipe.checkpoint = replace(recipe.checkpoint, save_interval=200)
    recipe.logging = replace(recipe.logging, run_name=name, log_interval=1)
    recipe.dpo = DPOConfig(beta=0.1, sft_loss_weight=0.0)
    return recipe


def midm_base_dpo() -> Recipe:
    """Mi:dm 2.0 Base-inst's preference stage (11.5B; TP=4 with sequence parallelism, as ``midm_base``)."""
    return _dpo(midm_base(), "midm_base_dpo")


def midm_mini_dpo() -> Recipe:
    """Mi:dm 2.0 Mini-inst's preference stage (2.3B, tied embeddings; TP=1 + distributed optimizer)."""
    recipe = _dpo(midm_mini(), "midm_mini_dpo")
    recipe.train = replace(recipe.train, micro_batch_size=2)
    return recipe


def tiny_dpo() -> Recipe:
    """CPU scale: the ``tiny_mini`` geometry, fp32, a few dozen steps on ~100 Korean safety pairs (SQuARe).

    β and the loss are the published ones; LR and steps are scaled to a 0.4M-parameter model that
    must move within minutes (5e-7 would not change it measurably).
    """
    recipe = _dpo(tiny_mini(), "tiny_dpo", steps=40, global_batch_size=8)
    recipe.precision = PrecisionConfig(dtype="fp32", fp8=None)
    recipe.optimizer = replace(recipe.optimizer, lr=1e-4, min_lr=1e-5)
    recipe.scheduler = replace(recipe.scheduler, warmup_steps=4)
    recipe.data = replace(recipe.data, seq_length=256, split="80,20,0", num_workers=0)
    recipe.train = replace(recipe.train, micro_batch_size=2, eval_interval=10, eval_steps=1)
    recipe.checkpoint = replace(recipe.checkpoint, save_interval=10, keep_last=None)
    return recipe
