"""The planner against Megatron-LM's own estimator (``megatron.training.theoretical_memory_usage``, shipped in
the pip ``megatron-core``) on the same configurations.

Weights + gradients + optimizer agree exactly once the one bookkeeping difference is added back (Megatron-LM
spreads the final norm over all stages; we put it on the last). Activations differ only by the terms
recipes/memory.py documents as deliberate — flash attention, SwiGLU, GQA / kv_channels, no dropout, fp32 norm
statistics, 16-byte token + position ids — and each test asserts the difference is exactly the sum of those
named terms, so a change in either estimator fails here.
"""
from __future__ import annotations

from argparse import Namespace

import pytest

from recipes import get_recipe
from recipes.memory import layout_of, memory_per_gpu, stage_memory

tmu = pytest.importorskip("megatron.training.theoretical_memory_usage")


def megatron_args(recipe, num_gpus: int, **extra) -> Namespace:
    """Megatron-LM's argparse namespace for a recipe (the fields its estimator reads)."""
    m, p = recipe.model, recipe.parallel
    tp, pp, cp = p.tensor_model_parallel_size, p.pipeline_model_parallel_size, p.context_parallel_size
    args = dict(
        num_layers=m.num_layers, hidden_size=m.hidden_size, ffn_hidden_size=m.ffn_hidden_size,
        num_attention_heads=m.num_attention_heads, kv_channels=m.kv_channels, group_query_attention=True,
        num_query_groups=m.num_query_groups, swiglu=True, normalization="RMSNorm", padded_vocab_size=m.vocab_size,
        untie_embeddings_and_output_weights=not m.tie_embeddings, add_bias_linear=False,
        multi_latent_attention=False, num_experts=None, moe_shared_expert_intermediate_size=None, moe_layer_freq=1,
        moe_ffn_hidden_size=None, moe_latent_size=None, moe_router_topk=None, mtp_num_layers=None,
        expert_tensor_parallel_size=1, expert_model_parallel_size=1, tensor_model_parallel_size=tp,
        pipeline_model_parallel_size=pp, context_parallel_size=cp, world_size=num_gpus,
        data_parallel_size=num_gpus // (tp * pp * cp), use_distributed_optimizer=p.use_distributed_optimizer,
        seq_length=recipe.data.seq_length, micro_batch_size=recipe.train.micro_batch_size,
        virtual_pipeline_model_parallel_size=p.virtual_pipeline_model_parallel_size,
        sequence_parallel=p.sequence_parallel, recompute_granularity="selective")
    args.update(extra)
    return Namespace(**args)


def with_layout(name: str, *overrides: str):
    return get_recipe(name, ["precision.fp8=none", "precision.dtype=bf16", "parallel.tp_comm_overlap=false",
                             "parallel.context_parallel_size=1", *overrides])


@pytest.mark.parametrize("name", ["midm_8b", "midm_mini"])
@pytest.mark.parametrize("tp,pp,gpus", [(1, 1, 8), (2, 1, 8), (4, 2, 16), (1, 4, 32), (8, 4, 64)])
@pytest.mark.parametrize("distributed", [True, False])
def test_weights_and_optimizer_match_megatron(name, tp, pp, gpus, distributed):
    recipe = with_layout(name, f"parallel.tensor_model_parallel_size={tp}", f"parallel.pipeline_model_parallel_size={pp}",
                         f"parallel.sequence_parallel={tp > 1}", f"parallel.use_distributed_optimizer={distributed}",
                         "train.global_batch_size=512")
    layout = layout_of(recipe, gpus)
    first = memory_per_gpu(recipe, layout)[0]  # Megatron-LM costs the first ("most loaded") stage
    ours = first.weights + first.gradients + first.optimizer
    theirs = tmu.compute_weight_and_optimizer_memory(megatron_args(recipe, gpus))
    bytes_per_param = 6 + 12 / layout.dp if distributed else 18
    final_norm_share = recipe.model.hidden_size / pp if pp > 1 else 0.0  # theirs: spread over stages; ours: last
    assert ours + final_norm_share * bytes_per_param == pytest.approx(theirs, rel=1e-12)


def test_distributed_optimizer_shards_over_dp_times_cp():
    """Deliberate: Megatron-Core shards the distributed optimizer over the DP × CP group; the estimator uses DP."""
    recipe = with_layout("midm_8b", "parallel.tensor_model_parallel_size=1", "parallel.sequence_parallel=false",
                         "parallel.context_parallel_size=2")
    layout = layout_of(recipe, 8)
    ours = memory_per_gpu(recipe, layout)[0]
    theirs = tmu.compute_weight_and_optimizer_memory(megatron_args(recipe, 8))
    n = ours.parameters
    assert theirs == pytest.approx(n * (6 + 12 / 4))  # DP = 4
    assert ours.weights + ours.gradients + ours.optimizer == pytest.approx(n * (6 + 12 / 8))  # DP × CP = 8


def _megatron_per_layer(fn, recipe, gpus: int) -> float:
    """Megatron-LM's bytes for one layer: the difference between L and L − 1 layers (PP = 1)."""
    full = fn(megatron_args(recipe, gpus), num_microbatches=None)
    less = fn(megatron_args(recipe, gpus, num_layers=recipe.model.num_layers - 1), num_microbatches=None)
    return full - less


@pytest.mark.parametrize("name,tp", [("midm_8b", 2), ("midm_8b", 8), ("midm_mini", 2), ("midm_base", 4)])
@pytest.mark.parametrize("fused_swiglu", [True, False])
def test_activations_with_sp_and_selective_recompute_match_megatron(name, tp, fused_swiglu):
    """Korthikanti Table 2 with SP + selective recompute: Megatron-LM's ``sbh(18 + 4·ffn/h)/t`` per layer."""
    recipe = with_layout(name, f"parallel.tensor_model_parallel_size={tp}", "parallel.sequence_parallel=true",
                         "perf.recompute_granularity=selective", f"perf.bias_activation_fusion={fused_swiglu}")
    layout = layout_of(recipe, 8 * tp)
    (only,) = memory_per_gpu(recipe, layout)
    ours = only.activation_per_layer
    theirs = _megatron_per_layer(tmu.compute_activation_memory, recipe, 8 * tp)
    m, sb = recipe.model, layout.tokens_per_microbatch
    h, f = m.hidden_size, m.ffn_hidden_size
    q, kv = m.num_attention_heads * m.kv_channels, m.num_query_groups * m.kv_channels
    deliberate = {
        "q/k/v are heads×kv_channels and groups×kv_channels wide, not hidden (GQA, Mini's head_dim)":
            2 * (q - h) + 4 * (kv - h),
        "attention output (linear_proj input) is heads×kv_channels wide": 2 * (q - h),
        "no dropout masks (attention and MLP)": -2 * h,
        "SwiGLU keeps both fc1 halves (2·ffn), GeLU keeps one": 2 * f,
        "unfused SwiGLU keeps silu(gate) and up": 0 if fused_swiglu else 4 * f,
        "fp32 rstd of the two norms": 8,
    }
    assert ours - theirs == pytest.approx(sum(deliberate.values()) * sb / tp, rel=1e-9)


def test_activations_without_sp_match_megatron():
    """Megatron-LM's no-SP estimate ``1.05 · sbh(10 + 24/t)`` (flash attention, ffn = 4h assumed)."""
    recipe = with_layout("midm_8b", "parallel.tensor_model_parallel_size=4", "parallel.sequence_parallel=false",
                         "perf.bias_activation_fusion=true")
    layout = layout_of(recipe, 32)
    (only,) = memory_per_gpu(recipe, layout)
    theirs = _megatron_per_layer(tmu.compute_activation_memory_without_sp, recipe, 32) / 1.05  # their 5% margin
    m, sb, t = recipe.model, layout.tokens_per_microbatch, 4
    h, f, a = m.hidden_size, m.ffn_hidden_size, m.num_attention_heads
    q, kv = a * m.kv_channels, m.num_query_groups * m.kv_channels
    replicated = {"no dropout masks": -2 * h, "fp32 rstd of the two norms": 8}
    sharded = {"q/k/v widths (GQA)": 2 * q + 4 * kv - 6 * h, "attention output width": 2 * q - 2 * h,
               "flash attention's fp32 log-sum-exp": 4 * a, "SwiGLU 3·ffn matrices vs GeLU with ffn = 4h": 6 * f - 16 * h}
    expected = (sum(replicated.values()) + sum(sharded.values()) / t) * sb
    assert only.activation_per_layer - theirs == pytest.approx(expected, rel=1e-9)


def test_embedding_and_output_terms_match_megatron():
    """Outside the layers (PP = 1, SP): theirs ``(8·sb + sbh + 4·sbh·(1 + V/h)) / t`` — token ids, embedding dropout,
    output-layer input and fp32 logits; ours the same logits and final norm, int64 ids + positions, no dropout."""
    recipe = with_layout("midm_8b", "parallel.tensor_model_parallel_size=2", "parallel.sequence_parallel=true",
                         "perf.recompute_granularity=selective")
    layout = layout_of(recipe, 16)
    (only,) = memory_per_gpu(recipe, layout)
    m, sb, t = recipe.model, layout.tokens_per_microbatch, 2
    per_layer = _megatron_per_layer(tmu.compute_activation_memory, recipe, 16)
    theirs = tmu.compute_activation_memory(megatron_args(recipe, 16), num_microbatches=None) - m.num_layers * per_layer
    assert only.logits == pytest.approx(4 * m.vocab_size / t * sb)  # the same fp32 logits term
    deliberate = {"int64 token + position ids on every TP rank vs 8 B / t": 16 - 8 / t,
                  "no embedding dropout": -m.hidden_size / t, "final norm's fp32 rstd": 4,
                  "final norm input + output (2 × bf16 h / t under SP) vs their 4h / t": 0}
    assert only.logits + only.other_activations - theirs == pytest.approx(sum(deliberate.values()) * sb, rel=1e-9)


@pytest.mark.parametrize("pp,vpp,microbatches", [(4, None, 2), (4, None, 64), (4, 2, 64), (8, 2, 64), (2, 12, 64)])
def test_pipeline_in_flight_factor_matches_megatron(pp, vpp, microbatches):
    """First-stage activations scale like Megatron-LM's: min(M, PP)/PP of a full pipeline, or the interleaving
    penalty 1 + (PP − 1)/(PP × VPP) on top of it."""
    def recipe_for(vpp_, m_):
        return with_layout("midm_base", "parallel.tensor_model_parallel_size=2", "parallel.sequence_parallel=true",
                           f"parallel.pipeline_model_parallel_size={pp}",
                           f"parallel.virtual_pipeline_model_parallel_size={vpp_ or 'none'}",
                           f"train.global_batch_size={m_ * 4}", "perf.recompute_granularity=selective")

    gpus = 2 * pp * 4
    recipe, full = recipe_for(vpp, microbatches), recipe_for(None, 4 * pp)
    ours = stage_memory(recipe, layout_of(recipe, gpus), "first").activations
    ours_full = stage_memory(full, layout_of(full, gpus), "first").activations
    theirs = tmu.compute_activation_memory(megatron_args(recipe, gpus), num_microbatches=microbatches)
    theirs_full = tmu.compute_activation_memory(megatron_args(full, gpus), num_microbatches=None)
    assert ours / ours_full == pytest.approx(theirs / theirs_full, rel=1e-9)
    expected = 1 + (pp - 1) / (pp * vpp) if vpp else min(microbatches, pp) / pp
    assert ours / ours_full == pytest.approx(expected, rel=1e-9)
