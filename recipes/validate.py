"""Checks that fail before anything launches, each naming the offending field.

A misconfigured 64-node job should die on the login node in a second, not after ten minutes of
NCCL initialisation with an opaque shape error.
"""
from __future__ import annotations

from recipes.config import Recipe
from recipes.overrides import RecipeError

_DTYPES = ("bf16", "fp16", "fp32")
_FP8_RECIPES = (None, "delayed", "tensorwise")
_SCHEDULES = ("cosine", "wsd", "constant", "linear")


def validate(recipe: Recipe, world_size: int | None = None, has_gpu: bool | None = None) -> None:
    """Raise :class:`RecipeError` listing every problem found (world size / hardware when given)."""
    m, p, t = recipe.model, recipe.parallel, recipe.train
    tp, pp = p.tensor_model_parallel_size, p.pipeline_model_parallel_size
    errors: list[str] = []

    def need(cond: bool, msg: str) -> None:
        if not cond:
            errors.append(msg)

    for name in ("num_layers", "hidden_size", "ffn_hidden_size", "num_attention_heads", "num_query_groups",
                 "kv_channels", "vocab_size"):
        need(getattr(m, name) > 0, f"model.{name} must be positive")
    need(tp >= 1 and pp >= 1, "parallel.tensor_model_parallel_size and pipeline_model_parallel_size must be >= 1")
    if errors:
        raise RecipeError("; ".join(errors))
    need(m.num_attention_heads % m.num_query_groups == 0,
         f"model.num_attention_heads ({m.num_attention_heads}) must be a multiple of model.num_query_groups "
         f"({m.num_query_groups})")
    need(m.num_attention_heads % tp == 0,
         f"parallel.tensor_model_parallel_size ({tp}) must divide model.num_attention_heads ({m.num_attention_heads})")
    need(m.num_query_groups % tp == 0,
         f"parallel.tensor_model_parallel_size ({tp}) must divide model.num_query_groups ({m.num_query_groups})")
    need(m.ffn_hidden_size % tp == 0,
         f"parallel.tensor_model_parallel_size ({tp}) must divide model.ffn_hidden_size ({m.ffn_hidden_size})")
    need(m.vocab_size % tp == 0,
         f"parallel.tensor_model_parallel_size ({tp}) must divide model.vocab_size ({m.vocab_size}); pad the vocabulary")
    need(m.num_layers % pp == 0,
         f"parallel.pipeline_model_parallel_size ({pp}) must divide model.num_layers ({m.num_layers})")
    need(not p.sequence_parallel or tp > 1, "parallel.sequence_parallel needs parallel.tensor_model_parallel_size > 1")
    need(recipe.data.seq_length <= m.max_position_embeddings,
         f"data.seq_length ({recipe.data.seq_length}) exceeds model.max_position_embeddings ({m.max_position_embeddings})")
    need(t.micro_batch_size >= 1 and t.global_batch_size >= 1, "train.micro_batch_size and train.global_batch_size must be >= 1")
    need(t.global_batch_size % t.micro_batch_size == 0,
         f"train.global_batch_size ({t.global_batch_size}) must be a multiple of train.micro_batch_size ({t.micro_batch_size})")
    need(recipe.precision.dtype in _DTYPES, f"precision.dtype must be one of {_DTYPES}, got {recipe.precision.dtype!r}")
    need(recipe.precision.fp8 in _FP8_RECIPES, f"precision.fp8 must be one of {_FP8_RECIPES}, got {recipe.precision.fp8!r}")
    need(recipe.scheduler.style in _SCHEDULES, f"scheduler.style must be one of {_SCHEDULES}, got {recipe.scheduler.style!r}")
    need(recipe.scheduler.warmup_steps >= 0, "scheduler.warmup_steps must be >= 0")
    need(t.steps >= 1, "train.steps must be >= 1")
    need(recipe.checkpoint.save_interval >= 1, "checkpoint.save_interval must be >= 1")
    need(not (recipe.data.blend and recipe.data.blend_file), "set only one of data.blend and data.blend_file")
    if recipe.sft is not None:
        need(recipe.sft.epochs is None or recipe.sft.epochs > 0, "sft.epochs must be positive")
        need(recipe.sft.warmup_fraction is None or 0 <= recipe.sft.warmup_fraction < 1,
             "sft.warmup_fraction must be in [0, 1)")
    if recipe.dpo is not None:
        need(recipe.dpo.beta > 0, f"dpo.beta must be positive, got {recipe.dpo.beta}")
        need(recipe.dpo.sft_loss_weight >= 0, f"dpo.sft_loss_weight must be >= 0, got {recipe.dpo.sft_loss_weight}")
        need(recipe.dpo.epochs is None or recipe.dpo.epochs > 0, "dpo.epochs must be positive")
        need(recipe.dpo.warmup_fraction is None or 0 <= recipe.dpo.warmup_fraction < 1,
             "dpo.warmup_fraction must be in [0, 1)")
    if world_size is not None:
        need(world_size % (tp * pp) == 0,
             f"world size {world_size} is not a multiple of tensor_model_parallel_size × pipeline_model_parallel_size "
             f"({tp} × {pp})")
        if world_size % (tp * pp) == 0:
            dp = world_size // (tp * pp)
            need(t.global_batch_size % (t.micro_batch_size * dp) == 0,
                 f"train.global_batch_size ({t.global_batch_size}) must be divisible by train.micro_batch_size × "
                 f"data-parallel size ({t.micro_batch_size} × {dp})")
    if has_gpu is False:
        need(recipe.precision.fp8 is None, "precision.fp8 needs an NVIDIA GPU with Transformer Engine (Hopper or newer); "
             "use --set precision.fp8=none on CPU")
        need(not p.sequence_parallel, "parallel.sequence_parallel needs GPUs (Transformer Engine / CUDA)")
        need(not p.use_distributed_optimizer, "parallel.use_distributed_optimizer needs GPUs; set it false on CPU")
        need(recipe.precision.dtype == "fp32", "on CPU use --set precision.dtype=fp32 (bf16/fp16 training is GPU-only here)")
    if errors:
        raise RecipeError("invalid recipe " + recipe.name + ":\n  - " + "\n  - ".join(errors))
