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
_RECOMPUTE = ("none", "selective", "full")
_RECOMPUTE_METHODS = ("uniform", "block")
# Megatron-Core's selective-recompute submodules of a dense GPT layer ("layernorm" is a no-op with TE's fused
# norms and needs TE on the local spec).
_RECOMPUTE_MODULES = ("core_attn", "mlp")
_FUSIONS = ("bias_activation_fusion", "bias_dropout_fusion", "apply_rope_fusion", "cross_entropy_loss_fusion")
_IMPLS = ("auto", "transformer_engine", "local")


def cpu_overrides() -> list[str]:
    """``--set`` assignments that turn any recipe's GPU-only settings off (fp32, no FP8/SP/CP, no distributed
    optimizer, overlaps or fusions): what ``validate(..., has_gpu=False)`` requires, in one place."""
    return ["precision.dtype=fp32", "precision.fp8=none", "parallel.sequence_parallel=false",
            "parallel.use_distributed_optimizer=false", "parallel.overlap_grad_reduce=false",
            "parallel.overlap_param_gather=false", "parallel.tp_comm_overlap=false", "parallel.context_parallel_size=1",
            "perf.transformer_impl=auto", *(f"perf.{name}=false" for name in _FUSIONS)]


def validate(recipe: Recipe, world_size: int | None = None, has_gpu: bool | None = None) -> None:
    """Raise :class:`RecipeError` listing every problem found (world size / hardware when given)."""
    m, p, t = recipe.model, recipe.parallel, recipe.train
    tp, pp, cp = p.tensor_model_parallel_size, p.pipeline_model_parallel_size, p.context_parallel_size
    vpp = p.virtual_pipeline_model_parallel_size
    errors: list[str] = []

    def need(cond: bool, msg: str) -> None:
        if not cond:
            errors.append(msg)

    for name in ("num_layers", "hidden_size", "ffn_hidden_size", "num_attention_heads", "num_query_groups",
                 "kv_channels", "vocab_size"):
        need(getattr(m, name) > 0, f"model.{name} must be positive")
    need(tp >= 1 and pp >= 1 and cp >= 1, "parallel.tensor_model_parallel_size, pipeline_model_parallel_size and "
         "context_parallel_size must be >= 1")
    need(vpp is None or vpp >= 1, "parallel.virtual_pipeline_model_parallel_size must be >= 1 (or none)")
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
    need(not p.tp_comm_overlap or (tp > 1 and p.sequence_parallel),
         "parallel.tp_comm_overlap needs parallel.tensor_model_parallel_size > 1 and parallel.sequence_parallel")
    if vpp is not None:
        need(pp > 1, "parallel.virtual_pipeline_model_parallel_size needs parallel.pipeline_model_parallel_size > 1")
        need(m.num_layers % (pp * vpp) == 0,
             f"parallel.pipeline_model_parallel_size × virtual_pipeline_model_parallel_size ({pp} × {vpp}) must "
             f"divide model.num_layers ({m.num_layers})")
    need(recipe.data.seq_length % (2 * cp) == 0 or cp == 1,
         f"data.seq_length ({recipe.data.seq_length}) must be a multiple of 2 × parallel.context_parallel_size "
         f"({2 * cp}) (load-balanced causal chunks)")
    _validate_perf(recipe, need)
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
    need(t.exit_after_steps is None or t.exit_after_steps >= 1,
         "train.exit_after_steps must be >= 1 (steps of one invocation), or null for no limit; "
         f"got {t.exit_after_steps}")
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
    if world_size is not None and world_size < 1:
        need(False, f"the job needs at least one process (GPU), got {world_size}")
    elif world_size is not None:
        need(world_size % (tp * pp * cp) == 0,
             f"world size {world_size} is not a multiple of tensor_model_parallel_size × "
             f"pipeline_model_parallel_size × context_parallel_size ({tp} × {pp} × {cp}): start "
             f"{tp * pp * cp} processes or a multiple (torchrun --nproc_per_node, srun --ntasks)")
        if world_size % (tp * pp * cp) == 0:
            dp = world_size // (tp * pp * cp)
            need(t.global_batch_size % (t.micro_batch_size * dp) == 0,
                 f"train.global_batch_size ({t.global_batch_size}) must be divisible by train.micro_batch_size × "
                 f"data-parallel size ({t.micro_batch_size} × {dp})")
            microbatches = t.global_batch_size // max(t.micro_batch_size * dp, 1)
            need(vpp is None or (microbatches >= pp and microbatches % pp == 0),
                 f"interleaved pipelining needs the number of micro-batches per step ({microbatches} = "
                 f"global_batch_size / (micro_batch_size × DP)) to be a multiple of "
                 f"parallel.pipeline_model_parallel_size ({pp})")
    if has_gpu is False:
        need(recipe.precision.fp8 is None, "precision.fp8 needs an NVIDIA GPU with Transformer Engine (Hopper or newer); "
             "use --set precision.fp8=none on CPU")
        need(not p.sequence_parallel, "parallel.sequence_parallel needs GPUs (Transformer Engine / CUDA)")
        need(not p.use_distributed_optimizer, "parallel.use_distributed_optimizer needs GPUs; set it false on CPU")
        need(recipe.precision.dtype == "fp32", "on CPU use --set precision.dtype=fp32 (bf16/fp16 training is GPU-only here)")
        need(cp == 1, "parallel.context_parallel_size > 1 needs GPUs with Transformer Engine (ring attention); "
             "use --set parallel.context_parallel_size=1 on CPU")
        need(not p.tp_comm_overlap, "parallel.tp_comm_overlap needs GPUs (Transformer Engine userbuffers); set it false on CPU")
        for name in _FUSIONS:
            need(not getattr(recipe.perf, name), f"perf.{name} is a GPU kernel fusion; use --set perf.{name}=false on CPU")
        need(recipe.perf.transformer_impl != "transformer_engine",
             "perf.transformer_impl=transformer_engine needs GPUs with Transformer Engine; use auto or local on CPU")
    if errors:
        raise RecipeError("invalid recipe " + recipe.name + ":\n  - " + "\n  - ".join(errors))


def _validate_perf(recipe: Recipe, need) -> None:
    """Recompute settings as Megatron-Core's TransformerConfig accepts them (checked here, before launch)."""
    r, p = recipe.perf, recipe.parallel
    layers_per_chunk = recipe.model.num_layers // max(
        p.pipeline_model_parallel_size * (p.virtual_pipeline_model_parallel_size or 1), 1)
    need(r.recompute_granularity in _RECOMPUTE,
         f"perf.recompute_granularity must be one of {_RECOMPUTE}, got {r.recompute_granularity!r}")
    if r.recompute_granularity == "full":
        need(r.recompute_method in _RECOMPUTE_METHODS,
             f"perf.recompute_granularity=full needs perf.recompute_method in {_RECOMPUTE_METHODS}, "
             f"got {r.recompute_method!r}")
        need(r.recompute_num_layers is not None and 1 <= r.recompute_num_layers <= max(layers_per_chunk, 1),
             f"perf.recompute_granularity=full needs perf.recompute_num_layers between 1 and the layers per "
             f"pipeline model chunk ({layers_per_chunk}), got {r.recompute_num_layers}")
    else:
        need(r.recompute_method is None and r.recompute_num_layers is None,
             f"perf.recompute_method / perf.recompute_num_layers apply only to perf.recompute_granularity=full "
             f"(got granularity {r.recompute_granularity!r}); set them to none")
    if r.recompute_granularity == "selective":
        unknown = sorted(set(r.recompute_modules) - set(_RECOMPUTE_MODULES))
        need(bool(r.recompute_modules) and not unknown,
             f"perf.recompute_modules must be a non-empty subset of {_RECOMPUTE_MODULES}, got {r.recompute_modules}")
    need(r.transformer_impl in _IMPLS, f"perf.transformer_impl must be one of {_IMPLS}, got {r.transformer_impl!r}")
    if r.transformer_impl == "local":
        p = recipe.parallel
        need(p.context_parallel_size == 1, "parallel.context_parallel_size > 1 needs perf.transformer_impl "
             "transformer_engine (Megatron-Core's local attention has no context parallelism)")
        need(recipe.precision.fp8 is None, "precision.fp8 needs perf.transformer_impl transformer_engine")
        need(not p.tp_comm_overlap, "parallel.tp_comm_overlap needs perf.transformer_impl transformer_engine")
        need(not p.sequence_parallel, "parallel.sequence_parallel needs perf.transformer_impl transformer_engine "
             "(the local spec's torch norms do not shard the sequence)")
    need(r.cross_entropy_fusion_impl in ("native", "te"),
         f"perf.cross_entropy_fusion_impl must be 'native' or 'te', got {r.cross_entropy_fusion_impl!r}")
