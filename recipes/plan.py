"""``midm recipe plan``: will a recipe fit on N GPUs, and how fast should it run? (no torch)

Memory comes from :mod:`recipes.memory`. Time per step is modelled as

    step = (M + (PP − 1) / VPP) × t_microbatch + exposed DP communication
    t_microbatch = FLOPs(microbatch, stage) × (1 + recompute) / (MFU × peak) + exposed TP communication

with ``M`` micro-batches per step and data-parallel rank (the ``(PP − 1)/VPP`` term is the 1F1B /
interleaved pipeline bubble, Narayanan et al. arXiv 2104.04473 §2.2), FLOPs per token from
:func:`recipes.stats.flops_per_token` (the model FLOPs the trainer's MFU also counts) and ``MFU``
the fraction of the dense bf16 peak the GPU sustains while it computes (``--mfu``; 989 TFLOP/s on
H100 and H200, the issue's reference also for FP8 runs). Recomputation adds the re-run forward
FLOPs. TP collectives (4 all-gathers/reduce-scatters of the layer's ``s·b·h`` activations forward, 4
backward) run at NVLink bus bandwidth and are exposed, or with ``parallel.tp_comm_overlap`` mostly hidden
behind the GEMMs; CP's ring exchange of K/V (forward K/V, backward K/V and their gradients) likewise
overlaps the attention compute in Transformer Engine. "Mostly" is an assumption: ``OVERLAPPED_EXPOSED``
(20%) of overlapped traffic still costs time (SM contention, the first and last chunk). DP gradient
reduce-scatter and parameter all-gather are hidden with ``overlap_grad_reduce``/``overlap_param_gather``,
else exposed at NVLink or InfiniBand bandwidth. Pipeline P2P sends are ignored.
The reported ``achieved_mfu`` is model FLOPs / (step time × peak): what the trainer would log.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from recipes.config import ModelConfig, Recipe
from recipes.memory import GIB, Layout, PlanError, StageMemory, layout_of, memory_per_gpu
from recipes.overrides import RecipeError
from recipes.stats import flops_per_token
from recipes.validate import validate


@dataclass(frozen=True)
class GpuSpec:
    name: str
    memory_bytes: int  # what the driver reports as total (nvidia-smi)
    peak_bf16_flops: float  # dense, per GPU
    nvlink_bus_bytes_per_s: float  # achievable NCCL bus bandwidth inside a node
    network_bytes_per_s: float  # per GPU across nodes (one 400 Gb/s NDR NIC per GPU)
    gpus_per_node: int = 8


GPUS: dict[str, GpuSpec] = {
    "h100-80gb": GpuSpec("h100-80gb", 81_559 * 2**20, 989e12, 360e9, 45e9),
    "h200-141gb": GpuSpec("h200-141gb", 143_771 * 2**20, 989e12, 360e9, 45e9),
}
# CUDA context, cuBLAS/TE workspaces and NCCL buffers, outside PyTorch's allocator.
RUNTIME_RESERVE_BYTES = 3 * GIB
# Share of overlapped TP/CP communication still on the critical path (an assumption, see the module doc).
OVERLAPPED_EXPOSED = 0.2
# Keep this fraction of the GPU free for allocator fragmentation: a plan "fits" below it.
FRAGMENTATION_HEADROOM = 0.10


@dataclass
class Plan:
    recipe: Recipe
    gpu: GpuSpec
    layout: Layout
    stages: list[StageMemory]
    mfu: float
    step_seconds: float
    compute_seconds: float
    bubble_fraction: float
    recompute_fraction: float
    exposed_tp_seconds: float
    exposed_dp_seconds: float
    teacher: ModelConfig | None = None
    largest_micro_batch: int | None = None

    @property
    def peak_stage(self) -> StageMemory:
        return max(self.stages, key=lambda s: s.total)

    @property
    def memory_bytes(self) -> float:
        """Per-GPU estimate of the busiest stage incl. the runtime reserve."""
        return self.peak_stage.total + RUNTIME_RESERVE_BYTES

    @property
    def usable_bytes(self) -> float:
        return self.gpu.memory_bytes * (1 - FRAGMENTATION_HEADROOM)

    @property
    def fits(self) -> bool:
        return self.memory_bytes <= self.usable_bytes

    @property
    def tokens_per_step(self) -> int:
        return self.recipe.train.global_batch_size * self.recipe.data.seq_length

    @property
    def tokens_per_s_per_gpu(self) -> float:
        return self.tokens_per_step / self.step_seconds / self.layout.num_gpus

    @property
    def achieved_mfu(self) -> float:
        flops = flops_per_token(self.recipe.model, self.recipe.data.seq_length)
        return self.tokens_per_s_per_gpu * flops / self.gpu.peak_bf16_flops

    def to_dict(self) -> dict:
        """JSON form: GiB for memory, seconds, tokens/s; every stage's terms in GiB."""
        lay, p = self.layout, self.recipe.perf

        def gib(x: float) -> float:
            return round(x / GIB, 3)

        stages = []
        for s in self.stages:
            stages.append({
                "stage": s.stage, "parameters": int(s.parameters), "weights_gib": gib(s.weights),
                "gradients_gib": gib(s.gradients), "optimizer_gib": gib(s.optimizer),
                "optimizer_without_distributed_optimizer_gib": gib(s.optimizer_without_distributed),
                "fp8_weight_cache_gib": gib(s.fp8_weight_cache), "teacher_weights_gib": gib(s.teacher_weights),
                "activation_per_layer_gib": gib(s.activation_per_layer), "layers": s.layers,
                "in_flight_microbatches": round(s.in_flight_microbatches, 3), "activations_gib": gib(s.activations),
                "logits_gib": gib(s.logits), "other_activations_gib": gib(s.other_activations),
                "workspace_gib": gib(s.workspace), "transient_gib": gib(s.transient), "total_gib": gib(s.total),
                "activation_terms_per_layer_gib": {k: gib(v) for k, v in s.terms.items()},
            })
        return {
            "recipe": self.recipe.name, "gpu": self.gpu.name, "gpus": lay.num_gpus,
            "layout": {"tp": lay.tp, "pp": lay.pp, "vpp": lay.vpp, "cp": lay.cp, "dp": lay.dp,
                       "sequence_parallel": lay.sp, "micro_batch_size": lay.micro_batch_size,
                       "num_microbatches": lay.num_microbatches,
                       "recompute": recompute_label(self.recipe),
                       "distributed_optimizer": self.recipe.parallel.use_distributed_optimizer,
                       "fp8": self.recipe.precision.fp8},
            "memory_per_gpu_gib": gib(self.memory_bytes), "runtime_reserve_gib": gib(RUNTIME_RESERVE_BYTES),
            "usable_gib": gib(self.usable_bytes), "gpu_memory_gib": gib(self.gpu.memory_bytes), "fits": self.fits,
            "largest_micro_batch_that_fits": self.largest_micro_batch, "stages": stages,
            "mfu": self.mfu, "step_seconds": round(self.step_seconds, 4),
            "tokens_per_s_per_gpu": round(self.tokens_per_s_per_gpu, 1),
            "tokens_per_s": round(self.tokens_per_s_per_gpu * lay.num_gpus, 1),
            "achieved_mfu": round(self.achieved_mfu, 4), "bubble_fraction": round(self.bubble_fraction, 4),
            "recompute_flops_fraction": round(self.recompute_fraction, 4),
            "exposed_tp_cp_comm_seconds": round(self.exposed_tp_seconds, 4),
            "exposed_dp_comm_seconds": round(self.exposed_dp_seconds, 4),
            "flops_per_token": flops_per_token(self.recipe.model, self.recipe.data.seq_length),
            "recompute_granularity": p.recompute_granularity,
            "teacher": None if self.teacher is None else {"num_layers": self.teacher.num_layers,
                                                          "hidden_size": self.teacher.hidden_size},
        }


def recompute_label(recipe: Recipe) -> str:
    p = recipe.perf
    if p.recompute_granularity == "full":
        return f"full/{p.recompute_method}/{p.recompute_num_layers}"
    if p.recompute_granularity == "selective":
        return "selective/" + "+".join(p.recompute_modules)
    return "none"


def _full_recompute_layers(recipe: Recipe, layout: Layout) -> float:
    """Fraction of the layers that full recompute re-runs (uniform: all; block: k per model chunk)."""
    p = recipe.perf
    if p.recompute_granularity != "full":
        return 0.0
    chunk = recipe.model.num_layers // layout.pp // (layout.vpp or 1)
    k = chunk if p.recompute_method == "uniform" else min(p.recompute_num_layers or 0, chunk)
    return k / max(chunk, 1)


def _recompute_flops_fraction(recipe: Recipe, layout: Layout) -> float:
    """Re-run forward FLOPs / model FLOPs (training = 3 × forward)."""
    m, p, s = recipe.model, recipe.perf, recipe.data.seq_length
    total = flops_per_token(m, s)
    if p.recompute_granularity == "full":
        layer_forward = (flops_per_token(m, s, training=False) - 2 * m.vocab_size * m.hidden_size) / m.num_layers
        return _full_recompute_layers(recipe, layout) * m.num_layers * layer_forward / total
    if p.recompute_granularity == "selective":
        q = m.num_attention_heads * m.kv_channels
        extra = 0.0
        if "core_attn" in p.recompute_modules:
            extra += 4 * s * q  # QK^T and PV forward
        if "mlp" in p.recompute_modules:
            extra += 2 * 3 * m.hidden_size * m.ffn_hidden_size
        return m.num_layers * extra / total
    return 0.0


def _slowest_stage_flops_per_token(recipe: Recipe, layout: Layout, teacher: ModelConfig | None = None) -> float:
    """Training FLOPs per token of the busiest pipeline stage: its layers, plus the output layer on the last
    (with a 131k vocabulary the output layer costs as much as ~2.5 of Mi:dm's 4096-wide layers), plus the
    frozen teacher's whole forward there under ``midm distill``."""
    m, s = recipe.model, recipe.data.seq_length
    head = 6 * m.vocab_size * m.hidden_size
    if teacher is not None:
        head += flops_per_token(teacher, s, training=False)
    per_layer = (flops_per_token(m, s) - 6 * m.vocab_size * m.hidden_size) / m.num_layers
    return m.num_layers // layout.pp * per_layer + head


def resolve_teacher(recipe: Recipe, teacher: str | None = "auto") -> ModelConfig | None:
    """The teacher to plan for: ``"auto"`` = ``distill.teacher_recipe`` (Mini: midm_base), ``None``/"none": no teacher."""
    name = recipe.distill.teacher_recipe if teacher == "auto" else teacher
    if name in (None, "none"):
        return None
    from recipes import get_recipe

    return get_recipe(name).model


def spec_of(recipe: Recipe) -> str:
    """The layer implementation a GPU run of ``recipe`` uses: "local" for ``perf.transformer_impl=local``, else
    Transformer Engine ("te"; the NGC containers ship it)."""
    return "local" if recipe.perf.transformer_impl == "local" else "te"


def estimate(recipe: Recipe, num_gpus: int, gpu: str = "h100-80gb", mfu: float = 0.5, spec: str | None = None,
             find_micro_batch: bool = True, teacher: str | None = "auto") -> Plan:
    """Memory and expected speed of ``recipe`` as configured on ``num_gpus`` GPUs.

    ``teacher``: plan ``midm distill`` with that teacher recipe beside the student ("auto": the recipe's
    ``distill.teacher_recipe``; None: plain ``midm train``).

    Raises :class:`~recipes.memory.PlanError` (unknown GPU, impossible layout) or
    :class:`~recipes.overrides.RecipeError` (the recipe fails validation for that world size on GPUs).
    """
    if gpu not in GPUS:
        raise PlanError(f"--gpu {gpu!r}: one of {', '.join(GPUS)}")
    spec = spec or spec_of(recipe)
    if not 0 < mfu <= 1:
        raise PlanError(f"--mfu {mfu}: expected a fraction in (0, 1]")
    spec_ = GPUS[gpu]
    layout = layout_of(recipe, num_gpus)
    validate(recipe, world_size=num_gpus, has_gpu=True)
    if layout.tp > spec_.gpus_per_node:
        raise PlanError(f"TP={layout.tp} spans nodes ({spec_.gpus_per_node} GPUs per node); keep TP within a node")
    teacher_model = resolve_teacher(recipe, teacher)
    stages = memory_per_gpu(recipe, layout, spec, teacher_model)

    m, s = recipe.model, recipe.data.seq_length
    flops_mb_stage = (_slowest_stage_flops_per_token(recipe, layout, teacher_model) * layout.micro_batch_size * s
                      / (layout.tp * layout.cp))
    recompute = _recompute_flops_fraction(recipe, layout)
    compute_mb = flops_mb_stage * (1 + recompute) / (mfu * spec_.peak_bf16_flops)

    e = 2 if recipe.precision.dtype != "fp32" else 4
    layers = m.num_layers // layout.pp
    tp_seconds = 0.0
    if layout.tp > 1:
        collectives = 8 + 4 * _full_recompute_layers(recipe, layout)  # + the re-run forward's 4
        volume = e * layout.tokens_per_microbatch * m.hidden_size * (layout.tp - 1) / layout.tp
        exposed = OVERLAPPED_EXPOSED if recipe.parallel.tp_comm_overlap else 1.0
        tp_seconds = exposed * collectives * volume * layers / spec_.nvlink_bus_bytes_per_s
    if layout.cp > 1:  # (CP − 1) ring steps of this rank's K/V: forward K/V, backward K/V + dK/dV
        kv = 2 * m.num_query_groups * m.kv_channels / layout.tp * e * layout.tokens_per_microbatch
        tp_seconds += OVERLAPPED_EXPOSED * 3 * (layout.cp - 1) * kv * layers / spec_.nvlink_bus_bytes_per_s
    vpp = layout.vpp or 1
    bubble = (layout.pp - 1) / vpp / layout.num_microbatches
    t_mb = compute_mb + tp_seconds
    dp_seconds = 0.0
    group = layout.dp * layout.cp
    p = recipe.parallel
    if group > 1 and not (p.overlap_grad_reduce and (p.overlap_param_gather or not p.use_distributed_optimizer)):
        params = max(st.parameters for st in stages)
        per_param = (4 + 2) if p.use_distributed_optimizer else 2 * 4  # RS fp32 grads + AG bf16 params | AR
        spans_nodes = layout.tp * group > spec_.gpus_per_node
        bw = spec_.network_bytes_per_s if spans_nodes else spec_.nvlink_bus_bytes_per_s
        dp_seconds = params * per_param * (group - 1) / group / bw
    step = (layout.num_microbatches + (layout.pp - 1) / vpp) * t_mb + dp_seconds
    plan = Plan(recipe=recipe, gpu=spec_, layout=layout, stages=stages, mfu=mfu, step_seconds=step,
                teacher=teacher_model,
                compute_seconds=layout.num_microbatches * compute_mb, bubble_fraction=bubble,
                recompute_fraction=recompute, exposed_tp_seconds=layout.num_microbatches * tp_seconds,
                exposed_dp_seconds=dp_seconds)
    if find_micro_batch:
        plan.largest_micro_batch = largest_micro_batch(recipe, num_gpus, gpu, spec, teacher)
    return plan


def largest_micro_batch(recipe: Recipe, num_gpus: int, gpu: str = "h100-80gb", spec: str | None = None,
                        teacher: str | None = "auto") -> int | None:
    """The largest ``train.micro_batch_size`` (a divisor of global batch / DP) that fits; None if even 1 does not."""
    p = recipe.parallel
    dp = num_gpus // (p.tensor_model_parallel_size * p.pipeline_model_parallel_size * p.context_parallel_size)
    per_rank = recipe.train.global_batch_size // max(dp, 1)
    best = None
    for mbs in sorted(d for d in range(1, per_rank + 1) if per_rank % d == 0):
        candidate = dataclasses.replace(recipe, train=dataclasses.replace(recipe.train, micro_batch_size=mbs))
        try:
            fits = estimate(candidate, num_gpus, gpu, spec=spec, find_micro_batch=False, teacher=teacher).fits
        except (PlanError, RecipeError):
            continue
        if not fits:
            break
        best = mbs
    return best


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def candidates(recipe: Recipe, num_gpus: int, gpu: str = "h100-80gb") -> list[Recipe]:
    """Layouts to try: TP (within a node, dividing heads and KV groups; SP on when TP > 1), PP (dividing the
    layers), VPP (dividing layers per stage), CP (powers of two dividing seq/2); micro-batch as configured."""
    m, s = recipe.model, recipe.data.seq_length
    node = GPUS[gpu].gpus_per_node if gpu in GPUS else 8
    out = []
    for tp in _divisors(math.gcd(m.num_attention_heads, m.num_query_groups)):
        if tp > node or num_gpus % tp:
            continue
        for cp in (c for c in (1, 2, 4, 8, 16, 32) if s % (2 * c) == 0 or c == 1):
            for pp in _divisors(m.num_layers):
                if num_gpus % (tp * cp * pp):
                    continue
                vpps = [None] + ([v for v in _divisors(m.num_layers // pp) if v > 1] if pp > 1 else [])
                for vpp in vpps:
                    parallel = dataclasses.replace(
                        recipe.parallel, tensor_model_parallel_size=tp, pipeline_model_parallel_size=pp,
                        context_parallel_size=cp, virtual_pipeline_model_parallel_size=vpp, sequence_parallel=tp > 1,
                        tp_comm_overlap=recipe.parallel.tp_comm_overlap and tp > 1)
                    out.append(dataclasses.replace(recipe, parallel=parallel))
    return out


def _with_recompute(recipe: Recipe, granularity: str, method: str | None = None, layers: int | None = None) -> Recipe:
    perf = dataclasses.replace(recipe.perf, recompute_granularity=granularity, recompute_method=method,
                               recompute_num_layers=layers)
    return dataclasses.replace(recipe, perf=perf)


def search(recipe: Recipe, num_gpus: int, gpu: str = "h100-80gb", mfu: float = 0.5, spec: str | None = None,
           top: int = 10, teacher: str | None = "auto") -> list[Plan]:
    """The fastest layouts that fit, best first.

    For each layout from :func:`candidates`, no recompute is tried first, then full/block recompute of
    the fewest layers per model chunk that fits (NVIDIA's Llama-3 H100 FP8 recipe style), then
    full/uniform 1. Ties in speed (within 0.5%) go to fewer model-parallel GPUs, then less recompute, then
    more memory headroom.
    """
    found: list[Plan] = []
    for layout_recipe in candidates(recipe, num_gpus, gpu):
        chunk = layout_recipe.model.num_layers // layout_recipe.parallel.pipeline_model_parallel_size // (
            layout_recipe.parallel.virtual_pipeline_model_parallel_size or 1)
        options = [_with_recompute(layout_recipe, "none")]
        options += [_with_recompute(layout_recipe, "full", "block", k) for k in range(1, chunk + 1)]
        options += [_with_recompute(layout_recipe, "full", "uniform", 1)]
        for option in options:
            try:
                plan = estimate(option, num_gpus, gpu, mfu, spec, find_micro_batch=False, teacher=teacher)
            except (PlanError, RecipeError):
                break  # the layout itself is invalid (batch divisibility, VPP micro-batches …)
            if plan.fits:
                found.append(plan)
                break
    best = max((p.tokens_per_s_per_gpu for p in found), default=0.0)

    def key(p: Plan):
        lay = p.layout
        tied = p.tokens_per_s_per_gpu >= best * 0.995
        return (not tied, -p.tokens_per_s_per_gpu if not tied else 0.0, lay.tp * lay.pp * lay.cp,
                p.recompute_fraction, p.memory_bytes)

    found.sort(key=key)
    for plan in found[:top]:
        plan.largest_micro_batch = largest_micro_batch(plan.recipe, num_gpus, gpu, spec, teacher)
    return found[:top]
