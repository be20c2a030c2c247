"""Typed recipe dataclasses: plain data, no torch, no Megatron.

A recipe is everything a run needs to be reproduced: model geometry, parallel layout, precision,
optimizer + LR schedule, data, checkpointing and logging. Recipes are built by short functions in
this package (``recipes/tiny.py``, ``recipes/midm_8b.py`` …) and refined with ``--set a.b=c``.
Keeping this module free of heavy imports lets ``midm recipe show`` and ``midm slurm render``
resolve recipes instantly on a login node.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar


@dataclass
class ModelConfig:
    """Llama-style decoder geometry (RMSNorm, SwiGLU, RoPE, GQA, no biases)."""

    num_layers: int
    hidden_size: int
    ffn_hidden_size: int
    num_attention_heads: int = 32
    num_query_groups: int = 8
    # Explicit, because Mini's head_dim (128) is not hidden/heads (1792/32 = 56).
    kv_channels: int = 128
    vocab_size: int = 131_392  # padded vocabulary, as in the released models
    max_position_embeddings: int = 32_768
    rotary_base: float = 8_000_000.0
    norm_epsilon: float = 1e-5
    tie_embeddings: bool = False
    init_method_std: float = 0.02

    # The fields that decide every weight's shape (and whether the output layer exists). The
    # vocabulary is the tokenizer's business and is checked separately.
    GEOMETRY: ClassVar[tuple[str, ...]] = ("num_layers", "hidden_size", "ffn_hidden_size", "num_attention_heads",
                                           "num_query_groups", "kv_channels", "tie_embeddings")

    def geometry(self) -> dict[str, int | bool]:
        """The shape-defining fields (``GEOMETRY``) and their values."""
        return {k: getattr(self, k) for k in self.GEOMETRY}

    def geometry_diff(self, other: "ModelConfig") -> dict[str, tuple[int | bool, int | bool]]:
        """``{field: (self's, other's)}`` for every geometry field where the two models differ."""
        return {k: (a, other.geometry()[k]) for k, a in self.geometry().items() if a != other.geometry()[k]}


@dataclass
class ParallelConfig:
    """Parallel layout, Megatron-Core's names. World size = TP × CP × PP × DP (DP is what remains)."""

    tensor_model_parallel_size: int = 1
    pipeline_model_parallel_size: int = 1
    # Interleaved 1F1B: each pipeline rank holds this many model chunks of
    # num_layers / (PP × VPP) layers each (None: plain 1F1B). Needs PP > 1.
    virtual_pipeline_model_parallel_size: int | None = None
    # Context parallelism splits the sequence over CP ranks (ring attention in Transformer Engine):
    # GPU-only; data.seq_length must be a multiple of 2 × CP (load-balanced causal chunks).
    context_parallel_size: int = 1
    # GPU-only features (they need TE/CUDA tensors); validated against the hardware at launch.
    sequence_parallel: bool = False
    use_distributed_optimizer: bool = False
    overlap_grad_reduce: bool = False
    overlap_param_gather: bool = False
    # Overlap TP all-gathers/reduce-scatters with GEMMs (TE userbuffers): needs TP > 1 and sequence_parallel.
    tp_comm_overlap: bool = False


@dataclass
class PerfConfig:
    """Memory/speed knobs that leave the model's math unchanged; Megatron-Core's TransformerConfig names.

    Activation recomputation: ``recompute_granularity`` "none" | "selective" (the submodules in
    ``recompute_modules``: "core_attn", "mlp") | "full" (whole layers; then
    ``recompute_method`` "uniform" — chunks of ``recompute_num_layers`` layers — or "block" — the first
    ``recompute_num_layers`` layers of each pipeline stage). Runs on CPU too.
    Fusions are GPU-only (validated): SwiGLU (``bias_activation_fusion``), bias-dropout-add,
    RoPE (needs Transformer Engine) and the fused vocab-parallel cross entropy.
    """

    # Megatron-LM's --transformer-impl: "auto" (Transformer Engine layers when TE and CUDA are present, else
    # Megatron-Core's local modules), "transformer_engine" or "local" (e.g. to check the local spec on a GPU).
    transformer_impl: str = "auto"
    recompute_granularity: str = "none"
    recompute_method: str | None = None
    recompute_num_layers: int | None = None
    recompute_modules: list[str] = field(default_factory=lambda: ["core_attn"])
    bias_activation_fusion: bool = False
    bias_dropout_fusion: bool = False
    apply_rope_fusion: bool = False
    cross_entropy_loss_fusion: bool = False
    cross_entropy_fusion_impl: str = "native"  # "native" (Megatron-Core) | "te" (Transformer Engine)


@dataclass
class PrecisionConfig:
    # "bf16" on GPUs; "fp32" on CPU (bf16 matmuls on CPU are slow and not what we test).
    dtype: str = "bf16"
    # None, or an FP8 scaling recipe of Transformer Engine: "delayed" | "tensorwise" (current scaling)
    fp8: str | None = None
    fp8_format: str = "hybrid"  # e4m3 forward, e5m2 backward
    fp8_amax_history_len: int = 1024


@dataclass
class OptimizerConfig:
    lr: float = 3e-4
    min_lr: float = 3e-5
    weight_decay: float = 0.1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    adam_eps: float = 1e-8
    clip_grad: float = 1.0


@dataclass
class SchedulerConfig:
    """LR schedule: warmup, then ``cosine`` (to min_lr at decay_steps), ``wsd`` (warmup-stable-decay),
    ``constant`` or ``linear`` (to min_lr at decay_steps; the usual SFT schedule)."""

    style: str = "cosine"
    warmup_steps: int = 2000
    decay_steps: int | None = None  # default: train.steps
    wsd_decay_steps: int | None = None  # length of the final decay of "wsd"; default 10% of steps
    wsd_decay_style: str = "linear"  # linear | cosine | exponential | minus_sqrt


@dataclass
class DataConfig:
    # Megatron-style blend: ["prefix"] or ["w1", "prefix1", "w2", "prefix2", …] (prefix = path without .bin/.idx)
    blend: list[str] = field(default_factory=list)
    # Or a JSON file written by `midm data mix`: {"blend": [[weight, "prefix"], …], …}
    blend_file: str | None = None
    split: str = "969,30,1"  # train,valid,test proportions of each prefix
    seq_length: int = 4096
    seed: int = 1234
    num_workers: int = 2
    cache_dir: str | None = None  # GPTDataset index cache; default: <checkpoint.dir>/../data_cache


@dataclass
class TrainConfig:
    steps: int = 1000
    global_batch_size: int = 512
    micro_batch_size: int = 1
    eval_interval: int = 1000
    eval_steps: int = 10
    seed: int = 1234
    # When set, stop after this many steps of this invocation: checkpoint, then exit 75 like a stop signal
    # (time-boxed jobs; Slurm's script requeues on 75). The invocation that reaches train.steps finishes (exit 0).
    exit_after_steps: int | None = None


@dataclass
class CheckpointConfig:
    dir: str | None = None  # where this run saves; `--resume auto` continues from <dir>/latest
    save_interval: int = 1000
    # Initial weights for a new run (e.g. the output of `midm dus` or `midm prune`): loaded model-only,
    # with a fresh optimizer and schedule. Ignored when resuming from `dir`.
    load: str | None = None
    keep_last: int | None = None  # prune older iter_* dirs after a successful save
    # Check every file against the checkpoint's manifest.json (XXH3 checksums) before loading it; false
    # skips the hashing (sizes, structure and the restricted unpickling are always checked).
    verify: bool = True
    async_save: bool = False
    # A resume whose recipe differs from the checkpoint's (megatron_ext/resume_check.py): take this
    # recipe's LR schedule, recomputed at the resumed step (Megatron-LM's --override-opt_param-scheduler) …
    override_scheduler: bool = False
    # … and continue on a changed data blend / split / seq_length / seed from the sample counter.
    allow_data_change: bool = False
    # Train or export although data, weights or --tokenizer record different tokenizer fingerprints
    # (megatron_ext/tokenizer_check.py): only for a deliberate change, e.g. a vocabulary extended in place.
    allow_tokenizer_change: bool = False


@dataclass
class LoggingConfig:
    dir: str = "runs"
    run_name: str = "run"
    log_interval: int = 1
    tensorboard: bool = True
    # Weights & Biases project to log to as well (the [wandb] extra); None: off. WANDB_MODE=offline
    # writes the run under <run dir>/wandb for a later `wandb sync`
    wandb_project: str | None = None


@dataclass
class DistillConfig:
    """Logit distillation (Minitron): forward KL on the teacher's logits, LM loss off by default."""

    temperature: float = 1.0
    kd_weight: float = 1.0
    lm_loss_weight: float = 0.0
    teacher_recipe: str | None = None  # default: read from the teacher checkpoint's recipe.json


@dataclass
class SFTConfig:
    """Supervised fine-tuning (``midm sft``): chat data from ``midm data sft``, started from a base
    checkpoint (``checkpoint.load``, whose model geometry the run adopts). Only ``*_sft`` recipes
    carry this section."""

    dataset: str | None = None        # OUT directory of `midm data sft` (index.json inside)
    epochs: float | None = None       # when set, train.steps = ceil(epochs × train samples / global batch)
    warmup_fraction: float | None = None  # when set, scheduler.warmup_steps = round(fraction × train.steps)


@dataclass
class DPOConfig:
    """Direct Preference Optimization (``midm dpo``; Rafailov et al., arXiv 2305.18290) on pairs from
    ``midm data prefs``, against a frozen reference. Only ``*_dpo`` recipes carry this section.

    loss = −log σ(β · [(log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x))])
           + sft_loss_weight · (−log π(y_w|x) / |y_w|)

    with sequence log-probabilities summed over response tokens (the chosen response's NLL term,
    length-normalised, is RPO's: Pang et al., arXiv 2404.19733; 0 turns it off).
    """

    beta: float = 0.1
    sft_loss_weight: float = 0.0
    dataset: str | None = None        # OUT directory of `midm data prefs` (index.json inside)
    epochs: float | None = None       # when set, train.steps = ceil(epochs × train pairs / global batch)
    warmup_fraction: float | None = None  # when set, scheduler.warmup_steps = round(fraction × train.steps)


@dataclass
class Recipe:
    name: str
    model: ModelConfig
    parallel: ParallelConfig = field(default_factory=ParallelConfig)
    perf: PerfConfig = field(default_factory=PerfConfig)
    precision: PrecisionConfig = field(default_factory=PrecisionConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    sft: SFTConfig | None = None  # post-training section: present only in *_sft recipes
    dpo: DPOConfig | None = None  # post-training section: present only in *_dpo recipes
