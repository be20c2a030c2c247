"""Recipes: typed, plain-data run configurations chosen by name (no torch, no Megatron)."""
from __future__ import annotations

from typing import Callable

from recipes.config import (CheckpointConfig, DataConfig, DistillConfig, DPOConfig, LoggingConfig, ModelConfig,
                            OptimizerConfig, ParallelConfig, PerfConfig, PrecisionConfig, Recipe, SchedulerConfig,
                            SFTConfig, TrainConfig)
from recipes.overrides import RecipeError, apply_overrides, recipe_from_dict, recipe_to_dict
from recipes.stats import flops_per_token, num_parameters
from recipes.validate import cpu_overrides, validate

__all__ = [
    "CheckpointConfig", "DataConfig", "DistillConfig", "DPOConfig", "LoggingConfig", "ModelConfig",
    "OptimizerConfig", "ParallelConfig", "PerfConfig", "PrecisionConfig", "Recipe", "RecipeError", "SchedulerConfig",
    "SFTConfig", "TrainConfig", "apply_overrides", "cpu_overrides", "flops_per_token", "get_recipe", "num_parameters",
    "recipe_from_dict", "recipe_to_dict",
    "recipe_names", "validate",
]


def _registry() -> dict[str, Callable[[], Recipe]]:
    from recipes import dpo, midm_8b, midm_base, midm_mini, sft, tiny

    return {
        "tiny": tiny.tiny,
        "tiny_deep": tiny.tiny_deep,
        "tiny_mini": tiny.tiny_mini,
        "midm_8b": midm_8b.midm_8b,
        "midm_base": midm_base.midm_base,
        "midm_base_long": midm_base.midm_base_long,
        "midm_mini": midm_mini.midm_mini,
        "tiny_sft": sft.tiny_sft,
        "midm_mini_sft": sft.midm_mini_sft,
        "midm_base_sft": sft.midm_base_sft,
        "tiny_dpo": dpo.tiny_dpo,
        "midm_base_dpo": dpo.midm_base_dpo,
        "midm_mini_dpo": dpo.midm_mini_dpo,
    }


def recipe_names() -> list[str]:
    return sorted(_registry())


def get_recipe(name: str, overrides: list[str] | None = None) -> Recipe:
    """Build recipe ``name`` and apply ``--set`` style overrides (``["train.steps=10", …]``)."""
    registry = _registry()
    if name not in registry:
        raise RecipeError(f"unknown recipe {name!r}; available: {', '.join(sorted(registry))}")
    return apply_overrides(registry[name](), overrides)
