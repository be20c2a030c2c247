"""Mi:dm 2.0 Base (11.5B): the 8B parent depth-up scaled 32 → 48 layers (SOLAR ``solar:8``).

``midm_base`` continues pretraining from ``midm dus --map solar:8`` output (set ``checkpoint.load``);
``midm_base_long`` then extends the context to 32k with RoPE θ = 8e6, as released.

Layouts from ``midm recipe plan … --gpus 8 --search`` (8 × H100 80 GB, bf16 + FP8, micro-batch 1 as NVIDIA's
Llama-3 H100 recipes):
  * ``midm_base`` (4k): TP=2 + SP + TP comm overlap, CP=2, DP=2, no recompute — about 65 GiB per GPU. 11.5B
    parameters need their static state (weights, fp32 grads, FP8 copies) split at least 2 ways, and CP=2
    then halves the activations instead of a wider TP (less exposed communication than TP=4).
  * ``midm_base_long`` (32k): TP=4 + SP, CP=2, DP=1, no recompute — about 63 GiB per GPU; CP splits the
    32k sequence so no layer has to be recomputed (TP=8 alone also fits but exposes more TP traffic;
    PP=2 would need recompute). NVIDIA's long-context Llama-3-8B recipes likewise combine TP with CP.
"""
from dataclasses import replace

from recipes.midm_8b import h100_fusions
from recipes.config import (CheckpointConfig, DataConfig, LoggingConfig, ModelConfig, OptimizerConfig,
                            ParallelConfig, PrecisionConfig, Recipe, SchedulerConfig, TrainConfig)


def midm_base_model() -> ModelConfig:
    return ModelConfig(num_layers=48, hidden_size=4096, ffn_hidden_size=14336)


def midm_base() -> Recipe:
    return Recipe(
        name="midm_base",
        model=midm_base_model(),
        parallel=ParallelConfig(tensor_model_parallel_size=2, context_parallel_size=2, sequence_parallel=True,
                                tp_comm_overlap=True, use_distributed_optimizer=True, overlap_grad_reduce=True,
                                overlap_param_gather=True),
        perf=h100_fusions(),
        precision=PrecisionConfig(dtype="bf16", fp8="tensorwise"),
        # A fresh optimizer after DuS; a lower peak LR than from scratch keeps the copied layers' knowledge.
        optimizer=OptimizerConfig(lr=1.5e-4, min_lr=1.5e-5),
        scheduler=SchedulerConfig(style="cosine", warmup_steps=1000),
        data=DataConfig(seq_length=4096),
        train=TrainConfig(steps=100_000, global_batch_size=1024, micro_batch_size=1, eval_interval=2000),
        checkpoint=CheckpointConfig(save_interval=1000, keep_last=3),
        logging=LoggingConfig(run_name="midm_base", log_interval=10),
    )


def midm_base_long() -> Recipe:
    recipe = midm_base()
    recipe.name = "midm_base_long"
    recipe.parallel = replace(recipe.parallel, tensor_model_parallel_size=4, context_parallel_size=2)
    recipe.data = replace(recipe.data, seq_length=32_768)
    recipe.optimizer = replace(recipe.optimizer, lr=3e-5, min_lr=3e-6)
    recipe.scheduler = replace(recipe.scheduler, warmup_steps=200)
    recipe.train = replace(recipe.train, steps=5_000, global_batch_size=128)
    recipe.logging = replace(recipe.logging, run_name="midm_base_long")
    return recipe
