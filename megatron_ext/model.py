"""Build Megatron-Core's ``GPTModel`` from a recipe — the single seam to the model class.

Transformer Engine's layer spec is used when TE and CUDA are both present (fused kernels, FP8),
Megatron's local spec otherwise (CPU). Both save the same dist-checkpoint keys (the local spec maps
its norms onto TE's names), so a checkpoint moves freely between a laptop and an H100 node.
Megatron-Core 0.19 marks GPTModel deprecated in favour of HybridModel; all conversion and pruning
tooling speaks GPTModel, so we stay on it, and only this module would change.
"""
from __future__ import annotations

import importlib.util
import warnings

import torch

from recipes import ModelConfig, Recipe, RecipeError


def te_available() -> bool:
    return torch.cuda.is_available() and importlib.util.find_spec("transformer_engine") is not None


def torch_dtype(name: str) -> torch.dtype:
    return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]


def transformer_config(recipe: Recipe | None = None, model: ModelConfig | None = None, **overrides):
    """Megatron ``TransformerConfig`` for a recipe (or a bare ModelConfig for tools like conversion)."""
    from megatron.core.transformer import TransformerConfig

    m = model if model is not None else recipe.model
    kwargs = dict(
        num_layers=m.num_layers,
        hidden_size=m.hidden_size,
        ffn_hidden_size=m.ffn_hidden_size,
        num_attention_heads=m.num_attention_heads,
        num_query_groups=m.num_query_groups,
        kv_channels=m.kv_channels,
        normalization="RMSNorm",
        layernorm_epsilon=m.norm_epsilon,
        gated_linear_unit=True,
        activation_func=torch.nn.functional.silu,
        add_bias_linear=False,
        add_qkv_bias=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        init_method_std=m.init_method_std,
        bias_activation_fusion=False,
        masked_softmax_fusion=False,
        persist_layer_norm=False,
        bias_dropout_fusion=False,
        apply_rope_fusion=False,
        gradient_accumulation_fusion=False,
        # TP-invariant initialisation: the full weight is drawn on the CPU and then split, so
        # TP=1 and TP=2 runs start from the same model. On GPUs we initialise on device (fast).
        use_cpu_initialization=not torch.cuda.is_available(),
        params_dtype=torch.float32,
    )
    if recipe is not None:
        p, prec = recipe.parallel, recipe.precision
        dtype = torch_dtype(prec.dtype)
        kwargs.update(
            tensor_model_parallel_size=p.tensor_model_parallel_size,
            pipeline_model_parallel_size=p.pipeline_model_parallel_size,
            sequence_parallel=p.sequence_parallel,
            bf16=prec.dtype == "bf16",
            fp16=prec.dtype == "fp16",
            params_dtype=dtype,
            pipeline_dtype=dtype,
            autocast_dtype=dtype,
        )
        if prec.fp8:
            kwargs.update(fp8=prec.fp8_format, fp8_recipe=prec.fp8, fp8_amax_history_len=prec.fp8_amax_history_len,
                          fp8_amax_compute_algo="max" if prec.fp8 == "delayed" else "most_recent")
        kwargs.update(
            context_parallel_size=p.context_parallel_size,
            virtual_pipeline_model_parallel_size=p.virtual_pipeline_model_parallel_size,
            tp_comm_overlap=p.tp_comm_overlap,
            masked_softmax_fusion=torch.cuda.is_available(),
            # Interleaving as Megatron-LM runs it: overlapped, unbatched p2p with even/odd send-recv order.
            # Batched p2p mismatches the two same-shape messages each way when PP = 2 (prev = next).
            overlap_p2p_comm=p.virtual_pipeline_model_parallel_size is not None,
            batch_p2p_comm=p.virtual_pipeline_model_parallel_size is None,
            **perf_config_kwargs(recipe),
        )
    kwargs.update(overrides)
    return TransformerConfig(**kwargs)


def perf_config_kwargs(recipe: Recipe) -> dict:
    """``recipe.perf`` as TransformerConfig fields: recompute (runs on CPU too) and the GPU kernel fusions."""
    r = recipe.perf
    kwargs = dict(bias_activation_fusion=r.bias_activation_fusion, bias_dropout_fusion=r.bias_dropout_fusion,
                  apply_rope_fusion=r.apply_rope_fusion, cross_entropy_loss_fusion=r.cross_entropy_loss_fusion,
                  cross_entropy_fusion_impl=r.cross_entropy_fusion_impl)
    if r.recompute_granularity != "none":
        kwargs.update(recompute_granularity=r.recompute_granularity, recompute_method=r.recompute_method,
                      recompute_num_layers=r.recompute_num_layers, recompute_modules=list(r.recompute_modules))
    return kwargs


def require_te_features(recipe: Recipe) -> None:
    """Refuse Transformer-Engine-only features on a CUDA machine without TE (e.g. a bare node running the
    local spec): context parallelism, TP comm overlap, RoPE fusion, FP8, TE's fused cross entropy.

    Raises:
        RecipeError: naming the ``--set`` that turns each one off.
    """
    r, p = recipe.perf, recipe.parallel
    if r.transformer_impl == "transformer_engine" and not te_available():
        raise RecipeError("perf.transformer_impl=transformer_engine but Transformer Engine is not importable "
                          "with CUDA here; install the [gpu] extra or use --set perf.transformer_impl=auto")
    if not torch.cuda.is_available() or te_available():
        return
    wanted = {"parallel.context_parallel_size=1": p.context_parallel_size > 1,
              "parallel.tp_comm_overlap=false": p.tp_comm_overlap,
              "perf.apply_rope_fusion=false": r.apply_rope_fusion,
              "precision.fp8=none": recipe.precision.fp8 is not None,
              "perf.cross_entropy_fusion_impl=native": r.cross_entropy_loss_fusion and r.cross_entropy_fusion_impl == "te"}
    missing = [fix for fix, on in wanted.items() if on]
    if missing:
        raise RecipeError(f"recipe {recipe.name} needs Transformer Engine, which is not importable here; install "
                          f"the [gpu] extra or run with --set {' --set '.join(missing)}")


def layer_spec(use_te: bool | None = None):
    from megatron.core.models.gpt.gpt_layer_specs import (get_gpt_layer_local_spec,
                                                          get_gpt_layer_with_transformer_engine_spec)

    if use_te if use_te is not None else te_available():
        return get_gpt_layer_with_transformer_engine_spec()
    return get_gpt_layer_local_spec(normalization="RMSNorm")


def build_model(model_cfg: ModelConfig | None = None, recipe: Recipe | None = None, *,
                pre_process: bool | None = None, post_process: bool | None = None,
                use_te: bool | None = None, config=None, pg_collection=None, vp_stage: int | None = None):
    """A ``GPTModel`` for this rank's pipeline stage (model-parallel state must be initialised).

    ``pre_process``/``post_process`` default to this rank's pipeline position (pass True for a whole
    model); ``pg_collection`` overrides Megatron's global process groups (e.g. a one-rank pipeline
    group for a frozen teacher built whole on a pipeline stage). ``vp_stage``: which of this rank's
    interleaved model chunks to build (``parallel.virtual_pipeline_model_parallel_size``); see
    :func:`build_model_chunks`.
    """
    from megatron.core import parallel_state
    from megatron.core.models.gpt import GPTModel

    m = model_cfg if model_cfg is not None else recipe.model
    if config is None:
        config = transformer_config(recipe=recipe, model=m)
    if use_te is None and recipe is not None and recipe.perf.transformer_impl != "auto":
        use_te = recipe.perf.transformer_impl == "transformer_engine"
    if pre_process is None:
        pre_process = parallel_state.is_pipeline_first_stage(ignore_virtual=vp_stage is None, vp_stage=vp_stage)
    if post_process is None:
        post_process = parallel_state.is_pipeline_last_stage(ignore_virtual=vp_stage is None, vp_stage=vp_stage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = GPTModel(
            config=config,
            transformer_layer_spec=layer_spec(use_te),
            vocab_size=m.vocab_size,
            max_sequence_length=m.max_position_embeddings,
            pre_process=pre_process,
            post_process=post_process,
            share_embeddings_and_output_weights=m.tie_embeddings,
            position_embedding_type="rope",
            rotary_base=int(m.rotary_base),
            **({"pg_collection": pg_collection} if pg_collection is not None else {}),
            **({"vp_stage": vp_stage} if vp_stage is not None else {}),
        )
    return model


def build_model_chunks(recipe: Recipe, config) -> list:
    """This rank's model chunks: one ``GPTModel``, or with interleaved pipelining (VPP = v) v chunks of
    ``num_layers / (PP × v)`` layers each — chunk i holds virtual stage ``i × PP + pipeline rank``."""
    vpp = recipe.parallel.virtual_pipeline_model_parallel_size
    if vpp is None:
        return [build_model(recipe=recipe, config=config)]
    return [build_model(recipe=recipe, config=config, vp_stage=i) for i in range(vpp)]


def count_parameters(model: torch.nn.Module) -> int:
    """Elements in this rank's shard (tied output weights counted once)."""
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total
