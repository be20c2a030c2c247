"""Training memory per GPU, term by term, from a recipe and a GPU count (no torch).

Units are bytes; "per token" means per token held by one GPU in one micro-batch, i.e. of the
``micro_batch_size × seq_length / CP`` tokens a context-parallel rank sees.

Sources
  * Weights, gradients, optimizer: Megatron-LM ``megatron/training/theoretical_memory_usage.py``
    (``compute_weight_and_optimizer_memory``): bf16 params (2 B), fp32 main grads (4 B, our trainer
    reduces in fp32), fp32 main params + Adam m, v (12 B), the last 12 B sharded over the
    distributed optimizer's group.
  * Activations: Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models",
    arXiv 2205.05198, §4.1–4.2 and Table 2 (per-layer stored tensors, SP divides the norm/residual
    part by TP, selective recompute), with the pipeline in-flight factors of its §4.2.3 and Megatron-LM's
    interleaved-schedule penalty ``1 + (PP − 1) / (PP × VPP)``.

Deliberate differences (each checked in ``tests/recipes/test_plan_megatron.py``):
  * Flash/fused attention (Transformer Engine) stores no ``s × s`` matrices: q, k, v, the output and
    an fp32 log-sum-exp per head, instead of Table 2's ``5·a·s/h`` term.
  * SwiGLU: fc1 is ``2 × FFN`` wide and its output is what the (fused) activation keeps; no GeLU input.
  * GQA and ``kv_channels``: k and v are ``num_query_groups × kv_channels`` wide and q is
    ``heads × kv_channels`` (Mini: 4096 while hidden is 1792); Megatron-LM's activation formula
    assumes q = k = v = hidden.
  * Mi:dm trains without dropout, so no 1-byte dropout masks.
  * The distributed optimizer shards over DP × CP (Megatron-Core's intra-DP-CP group);
    Megatron-LM's estimator divides by DP only.
  * Stages are costed separately (first: embedding + ``PP`` in-flight micro-batches; last:
    output layer, fp32 logits and their transients) and the larger is reported.

The "local" spec (Megatron-Core's own modules: torch RMSNorm, unfused ``DotProductAttention`` with its
global ``b·a·s²`` score buffer, GQA by ``repeat_interleave``) is what runs on CPU and is what the
measured CPU check in ``tests/recipes/test_plan_measured.py`` compares against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from midm.errors import MidmError
from recipes.config import ModelConfig, Recipe
from recipes.stats import layer_parameters, num_parameters
from recipes.validate import validate

GIB = 1024**3
_DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}
SPECS = ("te", "local")


class PlanError(MidmError):
    """A layout the planner cannot form (GPU count, divisibility); the message names the fix."""


@dataclass(frozen=True)
class Layout:
    """How ``num_gpus`` GPUs split a recipe: TP × CP × PP × DP = num_gpus."""

    num_gpus: int
    tp: int
    pp: int
    cp: int
    vpp: int | None
    dp: int
    sp: bool
    micro_batch_size: int
    num_microbatches: int  # per step and data-parallel rank
    tokens_per_microbatch: int  # tokens one GPU holds per micro-batch: micro_batch_size × seq_length / CP


def layout_of(recipe: Recipe, num_gpus: int) -> Layout:
    """The layout ``recipe.parallel`` gives on ``num_gpus`` GPUs.

    Raises :class:`PlanError` when the GPU count or batch does not split, and
    :class:`~recipes.overrides.RecipeError` when the recipe fails validation for that world size.
    """
    p, t = recipe.parallel, recipe.train
    tp, pp, cp = p.tensor_model_parallel_size, p.pipeline_model_parallel_size, p.context_parallel_size
    if num_gpus < 1:
        raise PlanError(f"--gpus must be at least 1, got {num_gpus}")
    if num_gpus % (tp * pp * cp):
        raise PlanError(f"--gpus {num_gpus} is not a multiple of TP × PP × CP = {tp} × {pp} × {cp}; "
                        "change --gpus or the layout (--set parallel.…)")
    dp = num_gpus // (tp * pp * cp)
    if t.global_batch_size % (t.micro_batch_size * dp):
        raise PlanError(f"train.global_batch_size ({t.global_batch_size}) is not divisible by micro_batch_size × "
                        f"DP ({t.micro_batch_size} × {dp}) on {num_gpus} GPUs")
    validate(recipe, world_size=num_gpus)
    return Layout(num_gpus=num_gpus, tp=tp, pp=pp, cp=cp, vpp=p.virtual_pipeline_model_parallel_size, dp=dp,
                  sp=p.sequence_parallel and tp > 1, micro_batch_size=t.micro_batch_size,
                  num_microbatches=t.global_batch_size // (t.micro_batch_size * dp),
                  tokens_per_microbatch=t.micro_batch_size * recipe.data.seq_length // cp)


# ----------------------------------------------------------------------------------------------- weights

@dataclass(frozen=True)
class StageParams:
    """Parameters held by one GPU of a pipeline stage (TP shard; norms replicated)."""

    layers: float
    embedding: float
    output_layer: float
    final_norm: float

    @property
    def total(self) -> float:
        return self.layers + self.embedding + self.output_layer + self.final_norm


def stage_parameters(recipe: Recipe, layout: Layout, stage: str) -> StageParams:
    """Parameters on one GPU of the ``"first"`` or ``"last"`` pipeline stage (both, when PP = 1).

    A tied output layer still has its own copy on the last stage when PP > 1 (Megatron-Core keeps
    the word embeddings there and all-reduces their gradients with the first stage).
    """
    m = recipe.model
    norms = 2 * m.hidden_size
    per_layer = (layer_parameters(m) - norms) / layout.tp + norms
    layers = m.num_layers // layout.pp * per_layer
    table = m.vocab_size * m.hidden_size / layout.tp
    first, last = stage in ("first", "only"), stage in ("last", "only")
    embedding = table if first else 0.0
    if last:
        output = 0.0 if (m.tie_embeddings and first) else table
        return StageParams(layers, embedding, output, float(m.hidden_size))
    return StageParams(layers, embedding, 0.0, 0.0)


def linear_parameters_per_layer(recipe: Recipe, layout: Layout) -> float:
    m = recipe.model
    return (layer_parameters(m) - 2 * m.hidden_size) / layout.tp


# ------------------------------------------------------------------------------------------- activations

def layer_activation_terms(recipe: Recipe, layout: Layout, spec: str = "te") -> dict[str, float]:
    """Bytes per token that one transformer layer stores for backward, without recompute, by tensor.

    ``spec="te"``: Transformer Engine layers (norm fused into the next linear, flash attention,
    fp8-cast linear inputs under FP8). ``spec="local"``: Megatron-Core's local modules (torch RMSNorm
    keeps input, normalised input and output; unfused attention keeps the softmax ``a·s`` per token).
    Tensor-parallel parts are divided by TP; norm/residual parts by TP only with sequence parallelism.
    """
    if spec not in SPECS:
        raise PlanError(f"unknown layer spec {spec!r}; one of {SPECS}")
    m, prec, perf = recipe.model, recipe.precision, recipe.perf
    e = _DTYPE_BYTES[prec.dtype]
    fp8 = spec == "te" and prec.fp8 is not None
    lin_in = 1 if fp8 else e  # what a linear layer keeps of its input for the weight gradient
    t, sp = layout.tp, layout.tp if layout.sp else 1
    h, f, a, g = m.hidden_size, m.ffn_hidden_size, m.num_attention_heads, m.num_query_groups
    q, kv = a * m.kv_channels, g * m.kv_channels
    terms: dict[str, float] = {}
    if spec == "te":
        terms["norm_inputs"] = 2 * e * h / sp  # residual stream into the two fused norm+linear
        terms["norm_outputs"] = 2 * lin_in * h / sp  # ln_out, kept (sharded under SP) for wgrad
        terms["norm_stats"] = 2 * 4 / sp  # fp32 rstd
        terms["qkv"] = e * (q + 2 * kv) / t  # flash attention inputs (after RoPE)
        terms["attention_out"] = (e + (1 if fp8 else 0)) * q / t  # kept by attention and by linear_proj
        terms["softmax_lse"] = 4 * a / t  # fp32 log-sum-exp per head
    else:
        terms["norm_inputs"] = 2 * e * h
        terms["norm_intermediate"] = 2 * e * h  # x · rsqrt(mean(x²)) (torch's composite RMSNorm)
        terms["norm_outputs"] = 2 * e * h
        terms["norm_stats"] = 2 * 4
        expanded = a > g  # GQA: DotProductAttention repeats k, v to all heads
        terms["query"] = e * q / t
        terms["key_value"] = (2 * e * q if expanded else e * kv + e * (q + 2 * kv)) / t
        terms["softmax"] = e * a / t * recipe.data.seq_length  # one row of a·s scores per token
        terms["attention_out"] = e * q / t
    terms["fc1_out"] = e * 2 * f / t  # SwiGLU input (gate and up)
    if not perf.bias_activation_fusion:
        terms["swiglu_intermediate"] = 2 * e * f / t  # silu(gate) and (up + offset), unfused
    terms["fc2_in"] = lin_in * f / t
    return terms


def _selective(terms: dict[str, float], recipe: Recipe, layout: Layout, spec: str) -> dict[str, float]:
    """Terms left after Megatron-Core's selective recompute of ``perf.recompute_modules``."""
    m, e = recipe.model, _DTYPE_BYTES[recipe.precision.dtype]
    out = dict(terms)
    modules = set(recipe.perf.recompute_modules)
    q, kv = m.num_attention_heads * m.kv_channels, m.num_query_groups * m.kv_channels
    if "core_attn" in modules:
        if spec == "te":
            out.pop("softmax_lse")  # checkpoint keeps q, k, v; the output is linear_proj's input anyway
        else:  # checkpoint keeps q, k (after RoPE) and v, a view that pins the whole qkv output
            out.pop("softmax")
            out["key_value"] = (e * kv + e * (q + 2 * kv)) / layout.tp
    if "mlp" in modules:
        for name in ("fc1_out", "swiglu_intermediate", "fc2_in"):
            out.pop(name, None)
        if spec == "te":  # the MLP (with its fused norm) keeps only its input, the residual stream
            sp = layout.tp if layout.sp else 1
            out["norm_inputs"] = terms["norm_inputs"] / 2 + e * m.hidden_size / sp
            out["norm_outputs"] = terms["norm_outputs"] / 2
            out["norm_stats"] = terms["norm_stats"] / 2
    return out


@dataclass
class StageMemory:
    """One GPU of one pipeline stage; bytes."""

    stage: str
    parameters: float
    weights: float
    gradients: float
    optimizer: float
    optimizer_without_distributed: float
    fp8_weight_cache: float
    activation_per_layer: float  # one layer, one micro-batch, after recompute
    layers: int
    in_flight_microbatches: float
    activations: float  # all layers × in-flight micro-batches (+ recompute checkpoints)
    logits: float
    other_activations: float  # inputs, final norm
    workspace: float  # local spec: the global attention-score buffer
    transient: float  # backward-time peak on top of what is stored
    teacher_weights: float = 0.0  # `midm distill`: the frozen teacher, whole and TP-sharded, on the last stage
    terms: dict[str, float] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return (self.weights + self.gradients + self.optimizer + self.fp8_weight_cache + self.teacher_weights
                + self.activations + self.logits + self.other_activations + self.workspace + self.transient)

    @property
    def stored_activations(self) -> float:
        """Everything kept for backward at the end of the forward passes (what Table 2 counts)."""
        return self.activations + self.logits + self.other_activations + self.workspace


def _in_flight(layout: Layout, rank: int) -> float:
    """Model-chunk micro-batches whose activations one pipeline rank holds at its peak (1F1B schedules).

    Plain 1F1B: ``min(PP − rank, M)`` micro-batches. Interleaved (VPP chunks): Megatron-Core's warm-up
    ``2(PP − rank − 1) + (VPP − 1)·PP`` plus one, in chunk units, i.e. ``PP·(1 + (PP−1)/(PP·VPP))``
    micro-batches on the first rank — Megatron-LM's interleaving penalty.
    """
    if layout.vpp is None:
        return float(min(layout.pp - rank, layout.num_microbatches))
    chunks = min(layout.num_microbatches * layout.vpp, 2 * (layout.pp - rank - 1) + (layout.vpp - 1) * layout.pp + 1)
    return chunks / layout.vpp


def teacher_weight_bytes(teacher: ModelConfig, recipe: Recipe, layout: Layout, spec: str = "te") -> float:
    """A frozen ``midm distill`` teacher on one GPU: all its layers (PP = 1), TP-sharded, in the student's
    precision, no gradients or optimizer; under FP8 plus a 1-byte forward-only copy of its linear weights
    (an assumption: TE's weight cast kept between micro-batches)."""
    norms = (2 * teacher.num_layers + 1) * teacher.hidden_size
    params = (num_parameters(teacher) - norms) / layout.tp + norms
    linear = teacher.num_layers * (layer_parameters(teacher) - 2 * teacher.hidden_size) / layout.tp
    fp8 = linear if (recipe.precision.fp8 and spec == "te") else 0.0
    return params * _DTYPE_BYTES[recipe.precision.dtype] + fp8


def stage_memory(recipe: Recipe, layout: Layout, stage: str, spec: str = "te",
                 teacher: ModelConfig | None = None) -> StageMemory:
    """Memory of one GPU of the ``"first"``, ``"last"`` or (PP = 1) ``"only"`` pipeline stage.

    With ``teacher`` (``midm distill``), the last stage also holds the frozen teacher and the KD loss keeps
    two fp32 vocabulary tensors per token instead of the cross entropy's one; its forward briefly holds
    teacher and student logits and ~5 fp32 vocabulary tensors (measured on CPU in test_plan_measured.py).
    """
    m, prec, perf = recipe.model, recipe.precision, recipe.perf
    e = _DTYPE_BYTES[prec.dtype]
    params = stage_parameters(recipe, layout, stage)
    n = params.total
    shard = layout.dp * layout.cp if recipe.parallel.use_distributed_optimizer else 1
    opt_bytes = 8 + (4 if prec.dtype != "fp32" else 0)  # Adam m, v (+ fp32 main params)
    layers = m.num_layers // layout.pp
    fp8_cache = 2 * layers * linear_parameters_per_layer(recipe, layout) if (prec.fp8 and spec == "te") else 0.0

    tokens = layout.tokens_per_microbatch
    full_terms = layer_activation_terms(recipe, layout, spec)
    granularity = perf.recompute_granularity
    kept_terms = _selective(full_terms, recipe, layout, spec) if granularity == "selective" else full_terms
    layer_full = sum(full_terms.values()) * tokens
    layer_kept = sum(kept_terms.values()) * tokens
    if spec == "local" and not perf.apply_rope_fusion:  # unfused RoPE keeps cos/sin (s × head_dim) for q and k
        rope = 4 * recipe.data.seq_length // layout.cp * m.kv_channels * e
        layer_full, layer_kept = layer_full + rope, layer_kept + rope
    checkpoint_input = e * m.hidden_size / (layout.tp if layout.sp else 1) * tokens
    vpp = layout.vpp or 1
    chunk_layers = layers // vpp
    recompute_transient = 0.0
    if granularity == "full":
        k = perf.recompute_num_layers or 1
        if perf.recompute_method == "uniform":
            per_chunk = math.ceil(chunk_layers / k) * checkpoint_input
            recompute_transient = min(k, chunk_layers) * layer_full
        else:  # block: the first k layers of each model chunk keep only their input
            k = min(k, chunk_layers)
            per_chunk = k * checkpoint_input + (chunk_layers - k) * layer_full
            recompute_transient = layer_full
        per_layer_reported = per_chunk / max(chunk_layers, 1)
    else:
        per_chunk = chunk_layers * layer_kept
        per_layer_reported = layer_kept
    rank = 0 if stage in ("first", "only") else layout.pp - 1
    in_flight = _in_flight(layout, rank)
    activations = per_chunk * vpp * in_flight

    last = stage in ("last", "only")
    other = (16 * tokens * in_flight) if stage in ("first", "only") else 0.0  # int64 tokens + position ids
    logits = 0.0
    param_bytes = _DTYPE_BYTES[prec.dtype]
    ffn = m.ffn_hidden_size / layout.tp
    # Backward inside the layers: fc1's weight gradient before it is added to main_grad, and the
    # gradient of its output; plus, under full recompute, the re-run chunk's activations.
    layer_peak = param_bytes * 2 * ffn * m.hidden_size + e * 2 * ffn * tokens + recompute_transient
    transient = layer_peak
    if last:
        sp = layout.tp if layout.sp else 1
        final_norm = ((2 if spec == "te" else 3) * e * m.hidden_size / sp + 4) * tokens
        other += final_norm
        vocab = m.vocab_size / layout.tp
        logits = 4 * vocab * tokens  # fp32 logits/softmax kept by the vocab-parallel cross entropy
        # Start of backward: bf16 logits beside their fp32 copy (or the fp32 grad beside its bf16 cast),
        # the output layer's weight gradient before it reaches main_grad, and the hidden-state grad.
        # By the time the layers run backward, logits and final norm are freed.
        head_peak = (e * vocab * tokens if e < 4 else 0.0) + param_bytes * vocab * m.hidden_size \
            + e * m.hidden_size * tokens
        if teacher is not None:  # measured: stored 2, forward peak 6 (fp32) / 7 (bf16) fp32 [tokens, V/t]
            logits = 8 * vocab * tokens
            head_peak = max(head_peak, (16 + (4 if e < 4 else 0) + 2 * e) * vocab * tokens)
        transient = max(head_peak, layer_peak - logits - final_norm)
    workspace = 0.0
    if spec == "local":  # DotProductAttention's score buffer from the global memory buffer, shared by layers
        workspace = e * layout.micro_batch_size * m.num_attention_heads / layout.tp * recipe.data.seq_length ** 2
    return StageMemory(
        stage=stage, parameters=n, weights=n * _DTYPE_BYTES[prec.dtype], gradients=n * 4,
        optimizer=n * opt_bytes / shard, optimizer_without_distributed=n * opt_bytes, fp8_weight_cache=fp8_cache,
        activation_per_layer=per_layer_reported, layers=layers, in_flight_microbatches=in_flight,
        activations=activations, logits=logits, other_activations=other, workspace=workspace, transient=transient,
        teacher_weights=teacher_weight_bytes(teacher, recipe, layout, spec) if (teacher is not None and last) else 0.0,
        terms={k: v * tokens for k, v in kept_terms.items()})


def memory_per_gpu(recipe: Recipe, layout: Layout, spec: str = "te",
                   teacher: ModelConfig | None = None) -> list[StageMemory]:
    """The first and last pipeline stages (one entry when PP = 1); the larger total is the one that must fit."""
    if layout.pp == 1:
        return [stage_memory(recipe, layout, "only", spec, teacher)]
    return [stage_memory(recipe, layout, "first", spec), stage_memory(recipe, layout, "last", spec, teacher)]
