"""Mi:dm 2.0 Mini (2.3B): Base pruned in width (hidden 1792, FFN 4608, 32 heads × 128 kept) and
logit-distilled from it; tied embeddings, exactly the published config.json.

The student starts from ``midm prune`` output (``checkpoint.load``); ``midm distill`` adds the frozen
teacher. Minitron's settings: forward KL at temperature 1, LM loss off, a modest constant-ish LR.

Layout from ``midm recipe plan midm_mini --gpus 8 --search`` (8 × H100 80 GB, 4k, bf16 + FP8), planned for
``midm distill`` — the frozen 11.5B teacher (``distill.teacher_recipe``) sits whole on every GPU beside the
student and runs a forward per micro-batch: TP=1, PP=1, CP=4, DP=2, micro-batch 2, no recompute, about 68 GiB
per GPU. The teacher's weights (~31 GiB with their FP8 copies) leave no room for data parallelism alone
(TP=1 × CP=1 needs ~108 GiB); CP=4 shrinks the student's activations and the KD loss's fp32 vocabulary
tensors (2.3B at hidden 1792 gains nothing from TP, which here is ~3% slower). Without a teacher
(``--teacher none``) pure DP=8 fits at ~51 GiB. Micro-batch 2 is the largest that fits.
"""
from recipes.config import (CheckpointConfig, DataConfig, DistillConfig, LoggingConfig, ModelConfig,
                            OptimizerConfig, ParallelConfig, PrecisionConfig, Recipe, SchedulerConfig,
                            TrainConfig)
from recipes.midm_8b import h100_fusions


def midm_mini_model() -> ModelConfig:
    return ModelConfig(num_layers=48, hidden_size=1792, ffn_hidden_size=4608, kv_channels=128, tie_embeddings=True)


def midm_mini() -> Recipe:
    return Recipe(
        name="midm_mini",
        model=midm_mini_model(),
        parallel=ParallelConfig(tensor_model_parallel_size=1, context_parallel_size=4, use_distributed_optimizer=True,
                                overlap_grad_reduce=True, overlap_param_gather=True),
        perf=h100_fusions(),
        precision=PrecisionConfig(dtype="bf16", fp8="tensorwise"),
        optimizer=OptimizerConfig(lr=1e-4, min_lr=1e-5),
        scheduler=SchedulerConfig(style="cosine", warmup_steps=100),
        data=DataConfig(seq_length=4096),
        train=TrainConfig(steps=20_000, global_batch_size=768, micro_batch_size=2, eval_interval=1000),
        checkpoint=CheckpointConfig(save_interval=1000, keep_last=3),
        logging=LoggingConfig(run_name="midm_mini", log_interval=10),
        distill=DistillConfig(temperature=1.0, kd_weight=1.0, lm_loss_weight=0.0, teacher_recipe="midm_base"),
    )
