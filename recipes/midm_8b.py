"""Mi:dm 2.0's 8B parent: 32 layers, hidden 4096, FFN 14336, GQA 32/8, untied (8,055,951,360 params).

Pretrained from scratch on the filtered Korean/English mixture; depth-up scaled into Base.

Layout (``midm recipe plan midm_8b --gpus 8 --search``, 8 × H100 80 GB, 4k tokens, bf16 + FP8): TP=2 with
sequence parallel and TP comm overlap, PP=1, CP=1, DP=4, micro-batch 1, no recompute — about 53 GiB per
GPU. TP=1 does not fit: bf16 weights, fp32 main grads and the FP8 weight copies alone take ~58 GiB before
optimizer shards and activations. NVIDIA's Llama-3-8B H100 recipes run TP=1 (CP=2 in bf16, 5-layer
recompute in FP8) with bf16 gradient reduction; we reduce gradients in fp32, so the planner picks TP=2
(and TP=2 × CP=1 beats TP=1 × CP≥2 on planned memory headroom at equal speed). Micro-batch 1 as NVIDIA;
2 would fit. Fusions as in NVIDIA's recipe: SwiGLU, bias-dropout-add, RoPE, fused cross entropy.
"""
from recipes.config import (CheckpointConfig, DataConfig, LoggingConfig, ModelConfig, OptimizerConfig,
                            ParallelConfig, PerfConfig, PrecisionConfig, Recipe, SchedulerConfig, TrainConfig)


def midm_8b_model() -> ModelConfig:
    return ModelConfig(num_layers=32, hidden_size=4096, ffn_hidden_size=14336)


def h100_fusions() -> PerfConfig:
    """The kernel fusions NVIDIA's Llama-3 H100 recipes turn on (GPU-only; validated)."""
    return PerfConfig(bias_activation_fusion=True, bias_dropout_fusion=True, apply_rope_fusion=True,
                      cross_entropy_loss_fusion=True)


def midm_8b() -> Recipe:
    return Recipe(
        name="midm_8b",
        model=midm_8b_model(),
        parallel=ParallelConfig(tensor_model_parallel_size=2, sequence_parallel=True, tp_comm_overlap=True,
                                use_distributed_optimizer=True, overlap_grad_reduce=True,
                                overlap_param_gather=True),
        perf=h100_fusions(),
        precision=PrecisionConfig(dtype="bf16", fp8="tensorwise"),
        optimizer=OptimizerConfig(lr=3e-4, min_lr=3e-5, weight_decay=0.1),
        scheduler=SchedulerConfig(style="wsd", warmup_steps=2000, wsd_decay_steps=20_000),
        data=DataConfig(seq_length=4096),
        train=TrainConfig(steps=250_000, global_batch_size=1024, micro_batch_size=1, eval_interval=2000),
        checkpoint=CheckpointConfig(save_interval=1000, keep_last=3),
        logging=LoggingConfig(run_name="midm_8b", log_interval=10),
    )
