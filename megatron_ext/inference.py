"""Forward-only access to checkpoints: full-vocabulary logits under any tensor-parallel size.

Used to check resharding (a TP=2 checkpoint loaded at TP=1 must give the same logits), by the HF
conversion tests, and by tools that score calibration data. Pipeline parallelism is not needed
for these small forward passes, so models here are built with PP=1.
"""
from __future__ import annotations

import torch

from megatron_ext import parallel
from megatron_ext.loading import load_model, read_recipe


def load_for_inference(path, tensor_model_parallel_size: int = 1, seed: int = 1234):
    """(model, recipe) from a checkpoint, in fp32, TP as requested, PP=1 (initialises parallel state)."""
    recipe = read_recipe(path)
    recipe.parallel.sequence_parallel = False
    recipe.precision.fp8 = None
    parallel.initialize(tensor_model_parallel_size, 1, seed=seed)
    return load_model(path, recipe=recipe, dtype="fp32", use_te=None)


@torch.no_grad()
def logits(model, tokens: torch.Tensor) -> torch.Tensor:
    """[batch, seq, vocab] fp32 logits, gathered across tensor-parallel ranks."""
    from megatron.core import tensor_parallel

    device = next(model.parameters()).device
    tokens = tokens.to(device)
    positions = torch.arange(tokens.shape[1], device=device).unsqueeze(0).expand_as(tokens)
    out = model(tokens, positions, attention_mask=None)  # [b, s, vocab/TP]
    out = tensor_parallel.gather_from_tensor_model_parallel_region(out)
    return out.float()
