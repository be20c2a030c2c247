"""Forward-only access to checkpoints: full-vocabulary logits under any tensor-parallel size.

Used to check resharding (a TP=2 checkpoint loaded at TP=1 must give the same logits), by the HF
conversion tests, and by tools that score calibration data. Pipeline parallelism is not needed
for these small forward passes, so models here are built with PP=1.
"""
from __future__ import annotations

import torch

from megatron_ext import checkpoint as ckpt
from megatron_ext import parallel
from megatron_ext.model import build_model, transformer_config
from recipes import Recipe


def load_for_inference(path, tensor_model_parallel_size: int = 1, seed: int = 1234):
    """(model, recipe) from a checkpoint, in fp32, TP as requested, PP=1 (initialises parallel state)."""
    recipe: Recipe = ckpt.read_recipe(path)
    recipe.parallel.tensor_model_parallel_size = tensor_model_parallel_size
    recipe.parallel.pipeline_model_parallel_size = 1
    recipe.parallel.sequence_parallel = False
    recipe.precision.dtype, recipe.precision.fp8 = "fp32", None
    parallel.initialize(tensor_model_parallel_size, 1, seed=seed)
    model = build_model(recipe=recipe, config=transformer_config(recipe=recipe))
    if torch.cuda.is_available():
        model.cuda()
    ckpt.load_model_only(path, model)
    model.eval()
    return model, recipe


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
