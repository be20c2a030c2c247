"""Mi:dm 2.0 Mini (2.3B): Base pruned in width (hidden 1792, FFN 4608, 32 heads × 128 kept) and
logit-distilled from it; tied embeddings, exactly the published config.json.

The student starts from ``midm prune`` output (``checkpoint.load``); ``midm distill`` adds the frozen
teacher. Minitron's settings: forward KL at temperature 1, LM loss off, a modest constant-ish LR.
"""
from recipes.config import (CheckpointConfig, DataConfig, DistillConfig, LoggingConfig, ModelConfig,
                            OptimizerConfig, ParallelConfig, PrecisionConfig, Recipe, SchedulerConfig,
                            TrainConfig)


def midm_mini_model() -> ModelConfig:
    return ModelConfig(num_layers=48, hidden_size=1792, ffn_hidden_size=4608, kv_channels=128, tie_embeddings=True)


def midm_mini() -> Recipe:
    return Recipe(
        name="midm_mini",
        model=midm_mini_model(),
        parallel=ParallelConfig(tensor_model_parallel_size=1, use_distributed_optimizer=True,
                                overlap_grad_reduce=True, overlap_param_gather=True),
        precision=PrecisionConfig(dtype="bf16", fp8="tensorwise"),
        optimizer=OptimizerConfig(lr=1e-4, min_lr=1e-5),
        scheduler=SchedulerConfig(style="cosine", warmup_steps=100),
        data=DataConfig(seq_length=4096),
        train=TrainConfig(steps=20_000, global_batch_size=768, micro_batch_size=2, eval_interval=1000),
        checkpoint=CheckpointConfig(save_interval=1000, keep_last=3),
        logging=LoggingConfig(run_name="midm_mini", log_interval=10),
        distill=DistillConfig(temperature=1.0, kd_weight=1.0, lm_loss_weight=0.0, teacher_recipe="midm_base"),
    )
