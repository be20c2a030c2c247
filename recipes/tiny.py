"""Tiny recipes: the Mi:dm lineage at laptop scale (fp32 on CPU, minutes end to end).

Same geometry rules as the real family — GQA (4 heads / 2 groups), SwiGLU, RoPE, and for
``tiny_mini`` a head_dim × heads ≠ hidden layout with tied embeddings like Mini — so every code
path the 8B/11.5B/2.3B models take (DuS, pruning, conversion, TP/PP) is exercised.
"""
from recipes.config import (CheckpointConfig, DataConfig, LoggingConfig, ModelConfig, OptimizerConfig,
                            ParallelConfig, PrecisionConfig, Recipe, SchedulerConfig, TrainConfig)


def tiny_model() -> ModelConfig:
    return ModelConfig(num_layers=4, hidden_size=128, ffn_hidden_size=384, num_attention_heads=4,
                       num_query_groups=2, kv_channels=32, vocab_size=4096, max_position_embeddings=1024,
                       rotary_base=10_000.0)


def tiny() -> Recipe:
    return Recipe(
        name="tiny",
        model=tiny_model(),
        parallel=ParallelConfig(),
        precision=PrecisionConfig(dtype="fp32"),
        optimizer=OptimizerConfig(lr=3e-3, min_lr=3e-4, weight_decay=0.01),
        scheduler=SchedulerConfig(style="cosine", warmup_steps=10),
        data=DataConfig(seq_length=128, split="95,5,0", num_workers=0),
        train=TrainConfig(steps=60, global_batch_size=16, micro_batch_size=4, eval_interval=20, eval_steps=4),
        checkpoint=CheckpointConfig(save_interval=20),
        logging=LoggingConfig(run_name="tiny", log_interval=1),
    )


def tiny_deep() -> Recipe:
    """The depth-up-scaled tiny model (4 → 6 layers with ``midm dus --map solar:1``)."""
    recipe = tiny()
    recipe.name = "tiny_deep"
    recipe.model.num_layers = 6
    recipe.optimizer.lr = 1.5e-3
    recipe.logging.run_name = "tiny_deep"
    return recipe


def tiny_mini() -> Recipe:
    """``tiny_deep`` pruned in width, as Mini is Base pruned in width (same depth): hidden 64 while
    heads × head_dim = 128 (Mini's layout, q projects 64 → 128), FFN 192, tied embeddings."""
    recipe = tiny_deep()
    recipe.name = "tiny_mini"
    recipe.optimizer.lr = 3e-3
    recipe.model.hidden_size = 64
    recipe.model.ffn_hidden_size = 192
    recipe.model.tie_embeddings = True
    recipe.logging.run_name = "tiny_mini"
    return recipe
