"""SFT recipes: the ``-inst`` models every model-card number measures (``midm sft``).

Mi:dm 2.0's SFT hyperparameters are not published. We follow Tülu 3 (Lambert et al. 2024,
arXiv 2411.15124, Table 5 "SFT hyperparameters", the recipe OLMo 2 also uses): 2 epochs, effective
batch 128 sequences, max length 4,096, linear decay with 3% warmup, no weight decay, peak LR 5e-6
at 8B (2e-6 at 70B); packed sequences with assistant-only loss, as in Megatron-Bridge's SFT
recipes. Mini (2.3B) uses 1e-5, Llama 3's SFT learning rate (Dubey et al. 2024, arXiv 2407.21783
§4.1.3), which sits in the range smaller models tolerate. The model geometry comes from the base
checkpoint (``checkpoint.load``); the data from ``midm data sft`` (``sft.dataset``).
"""
from recipes.config import OptimizerConfig, Recipe, SchedulerConfig, SFTConfig
from recipes.midm_base import midm_base
from recipes.midm_mini import midm_mini
from recipes.tiny import tiny_mini


def _as_sft(recipe: Recipe, name: str, lr: float) -> Recipe:
    recipe.name = name
    recipe.optimizer = OptimizerConfig(lr=lr, min_lr=0.0, weight_decay=0.0, adam_beta1=0.9, adam_beta2=0.95,
                                       clip_grad=1.0)
    recipe.scheduler = SchedulerConfig(style="linear", warmup_steps=0)
    recipe.sft = SFTConfig(epochs=2.0, warmup_fraction=0.03)
    recipe.data.seq_length = 4096
    recipe.train.global_batch_size = 128
    recipe.train.eval_interval = 200
    recipe.checkpoint.save_interval = 500
    recipe.logging.run_name = name
    return recipe


def midm_base_sft() -> Recipe:
    """Base-inst: Tülu 3's 8B settings (LR 5e-6) on the 11.5B Base, TP=4 with sequence parallelism."""
    recipe = _as_sft(midm_base(), "midm_base_sft", lr=5e-6)
    recipe.train.micro_batch_size = 1
    return recipe


def midm_mini_sft() -> Recipe:
    """Mini-inst: the same recipe at LR 1e-5 on the 2.3B Mini."""
    recipe = _as_sft(midm_mini(), "midm_mini_sft", lr=1e-5)
    recipe.train.micro_batch_size = 1
    return recipe


def tiny_sft() -> Recipe:
    """CPU scale: fp32, short packed sequences (256 tokens), a few hundred steps' worth of epochs."""
    recipe = _as_sft(tiny_mini(), "tiny_sft", lr=1e-3)
    recipe.data.seq_length = 256
    recipe.data.num_workers = 0
    recipe.sft = SFTConfig(epochs=3.0, warmup_fraction=0.05)
    recipe.train.global_batch_size, recipe.train.micro_batch_size = 8, 4
    recipe.train.eval_interval, recipe.train.eval_steps = 20, 1
    recipe.checkpoint.save_interval = 20
    return recipe
