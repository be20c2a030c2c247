"""Mi:dm 2.0's 8B parent: 32 layers, hidden 4096, FFN 14336, GQA 32/8, untied (8,055,951,360 params).

Pretrained from scratch on the filtered Korean/English mixture; depth-up scaled into Base.
Layout for H100 nodes: TP=2 with sequence parallel and the distributed optimizer, bf16 + FP8.
"""
from recipes.config import (CheckpointConfig, DataConfig, LoggingConfig, ModelConfig, OptimizerConfig,
                            ParallelConfig, PrecisionConfig, Recipe, SchedulerConfig, TrainConfig)


def midm_8b_model() -> ModelConfig:
    return ModelConfig(num_layers=32, hidden_size=4096, ffn_hidden_size=14336)


def midm_8b() -> Recipe:
    return Recipe(
        name="midm_8b",
        model=midm_8b_model(),
        parallel=ParallelConfig(tensor_model_parallel_size=2, sequence_parallel=True,
                                use_distributed_optimizer=True, overlap_grad_reduce=True,
                                overlap_param_gather=True),
        precision=PrecisionConfig(dtype="bf16", fp8="tensorwise"),
        optimizer=OptimizerConfig(lr=3e-4, min_lr=3e-5, weight_decay=0.1),
        scheduler=SchedulerConfig(style="wsd", warmup_steps=2000, wsd_decay_steps=20_000),
        data=DataConfig(seq_length=4096),
        train=TrainConfig(steps=250_000, global_batch_size=1024, micro_batch_size=1, eval_interval=2000),
        checkpoint=CheckpointConfig(save_interval=1000, keep_last=3),
        logging=LoggingConfig(run_name="midm_8b", log_interval=10),
    )
