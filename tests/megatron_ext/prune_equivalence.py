"""Functional check of head / query-group / neuron slicing against Megatron's own attention and MLP.

Dropping attention heads (or whole query groups) and MLP neurons must compute exactly what the
unpruned model computes when those heads' ``linear_proj`` columns and those neurons' ``linear_fc2``
columns are zeroed. Run as a script (it initialises Megatron's parallel state); prints max |Δlogit|.
"""
from __future__ import annotations

import copy
import json

import torch


def main() -> None:
    from megatron_ext import parallel
    from megatron_ext.calibration import forward
    from megatron_ext.loading import build_for_load, init_single_process
    from megatron_ext.state_io import load_tensors, tensor_items
    from megatron_ext.importance import Importance
    from megatron_ext.prune_slice import plan, slice_state
    from recipes import get_recipe

    init_single_process()
    recipe = get_recipe("tiny", ["model.vocab_size=384", "model.num_layers=2"])
    recipe.model.num_attention_heads, recipe.model.num_query_groups = 8, 4  # 2 heads per group
    src = recipe.model
    teacher = build_for_load(recipe)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():  # surgery models skip init; non-trivial norms so a wrong index would show
        for name, p in teacher.named_parameters():
            p.copy_(1 + 0.5 * torch.rand(p.shape, generator=gen) if "layernorm" in name
                    else 0.05 * torch.randn(p.shape, generator=gen))
    imp = Importance(hidden=torch.ones(src.hidden_size), blocks=torch.ones(src.num_layers),
                     mlp=[torch.rand(src.ffn_hidden_size, generator=gen) for _ in range(src.num_layers)],
                     heads=[torch.rand(src.num_attention_heads, generator=gen) for _ in range(src.num_layers)])
    dst = copy.deepcopy(src)
    dst.num_attention_heads, dst.num_query_groups, dst.ffn_hidden_size = 2, 2, 100  # 2 of 4 groups, 1 head each
    keep = plan(imp, src, dst)
    tensors = tensor_items(teacher)
    student_recipe = copy.deepcopy(recipe)
    student_recipe.model = dst
    student = build_for_load(student_recipe)
    load_tensors(student, slice_state(tensors, src, dst, keep))
    d = src.kv_channels
    with torch.no_grad():
        for layer in range(src.num_layers):
            proj = teacher.decoder.layers[layer].self_attention.linear_proj.weight
            dropped = [h for h in range(src.num_attention_heads) if h not in keep.heads[layer].tolist()]
            for h in dropped:
                proj[:, h * d:(h + 1) * d] = 0
            fc2 = teacher.decoder.layers[layer].mlp.linear_fc2.weight
            fc2[:, [n for n in range(src.ffn_hidden_size) if n not in keep.ffn[layer].tolist()]] = 0
    tokens = torch.randint(0, 256, (2, 32), generator=gen)
    diff = (forward(teacher, tokens) - forward(student, tokens)).abs().max().item()
    print(json.dumps({"max_abs_diff": diff, "heads": {k: v.tolist() for k, v in keep.heads.items()},
                      "groups": {k: v.tolist() for k, v in keep.groups.items()}}))
    parallel.destroy()


if __name__ == "__main__":
    main()
