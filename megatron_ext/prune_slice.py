"""Which channels/neurons/heads/layers to keep (from importance) and how to slice every weight.

Pure tensor code on a plain ``state_dict`` (Megatron local-spec names, TP=1), so it is exact and
testable without Megatron's parallel state. Index sets are kept in their *original* order (modelopt
sorts them by importance instead; the function computed is the same, since permuting hidden
channels, neurons or heads consistently does not change the network).

Layouts sliced here (Megatron-Core GPT, no biases):

* ``linear_qkv.weight`` ``[G·(A/G + 2)·d, H]``: rows grouped per query group ``g`` as
  ``[q heads of g (A/G·d) | k (d) | v (d)]`` — dropping a group drops its q, k and v rows;
  dropping heads inside a group drops only their q rows.
* ``linear_proj.weight`` ``[H, A·d]``: columns head-major in the same order as the q rows.
* ``linear_fc1.weight`` ``[2F, H]``: SwiGLU ``[gate; up]`` halves, both sliced by the same neurons.
* norms, embeddings and the output layer: the hidden (embedding-channel) axis.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from megatron_ext.state_io import LAYER_KEY as _LAYER
from midm.errors import MidmError
from recipes import ModelConfig

FOLDS = ("embedding", "output", "mean")


class PruneError(MidmError, ValueError):
    """A pruning target that cannot be built from this source."""


@dataclass
class KeepPlan:
    hidden: torch.Tensor  # kept hidden channels, ascending
    layers: list[int]  # kept source layers, ascending
    ffn: dict[int, torch.Tensor]  # source layer → kept neurons
    groups: dict[int, torch.Tensor]  # source layer → kept query groups
    heads: dict[int, torch.Tensor]  # source layer → kept heads (global head ids, ascending)

    def to_json(self) -> dict:
        return {"hidden": self.hidden.tolist(), "layers": self.layers,
                "ffn": {str(k): v.tolist() for k, v in self.ffn.items()},
                "query_groups": {str(k): v.tolist() for k, v in self.groups.items()},
                "heads": {str(k): v.tolist() for k, v in self.heads.items()}}


def check_target(src: ModelConfig, dst: ModelConfig) -> None:
    problems = []
    for name in ("hidden_size", "ffn_hidden_size", "num_attention_heads", "num_query_groups", "num_layers"):
        if getattr(dst, name) > getattr(src, name):
            problems.append(f"{name} {getattr(dst, name)} > source {getattr(src, name)} (pruning only shrinks)")
        if getattr(dst, name) < 1:
            problems.append(f"{name} must be >= 1")
    if dst.num_attention_heads % dst.num_query_groups:
        problems.append(f"heads {dst.num_attention_heads} must be a multiple of kv-groups {dst.num_query_groups}")
    elif dst.num_attention_heads // dst.num_query_groups > src.num_attention_heads // src.num_query_groups:
        problems.append(f"{dst.num_attention_heads // dst.num_query_groups} heads per group exceeds the source's "
                        f"{src.num_attention_heads // src.num_query_groups} (heads are kept inside their groups)")
    if dst.kv_channels != src.kv_channels or dst.vocab_size != src.vocab_size:
        problems.append("kv_channels and vocab_size are kept from the source (Mini keeps 128-dim heads)")
    if problems:
        raise PruneError("; ".join(problems))


def _top(scores: torch.Tensor, k: int) -> torch.Tensor:
    return torch.topk(scores.float(), k, sorted=True).indices.sort().values


def plan(importance, src: ModelConfig, dst: ModelConfig) -> KeepPlan:
    """Minitron's selection: top-k by activation importance on every pruned axis."""
    check_target(src, dst)
    layers = list(range(src.num_layers))
    if dst.num_layers < src.num_layers:
        layers = _top(importance.blocks, dst.num_layers).tolist()
    per_group = src.num_attention_heads // src.num_query_groups
    keep_per_group = dst.num_attention_heads // dst.num_query_groups
    ffn, groups, heads = {}, {}, {}
    for layer in layers:
        ffn[layer] = _top(importance.mlp[layer], dst.ffn_hidden_size)
        head_scores = importance.heads[layer].view(src.num_query_groups, per_group)
        kept_groups = _top(head_scores.norm(dim=1), dst.num_query_groups)
        groups[layer] = kept_groups
        heads[layer] = torch.cat([g * per_group + _top(head_scores[g], keep_per_group) for g in kept_groups.tolist()])
    return KeepPlan(hidden=_top(importance.hidden, dst.hidden_size), layers=layers, ffn=ffn, groups=groups,
                    heads=heads)


def _qkv_rows(src: ModelConfig, groups: torch.Tensor, heads: torch.Tensor) -> torch.Tensor:
    d, per_group = src.kv_channels, src.num_attention_heads // src.num_query_groups
    block = (per_group + 2) * d
    rows = []
    for g in groups.tolist():
        in_group = [h - g * per_group for h in heads.tolist() if h // per_group == g]
        for j in in_group:
            rows.append(torch.arange(g * block + j * d, g * block + (j + 1) * d))
        rows.append(torch.arange(g * block + per_group * d, g * block + (per_group + 2) * d))  # k, v
    return torch.cat(rows)


def _proj_cols(src: ModelConfig, heads: torch.Tensor) -> torch.Tensor:
    d = src.kv_channels
    return torch.cat([torch.arange(h * d, (h + 1) * d) for h in heads.tolist()])


def slice_layer(name: str, w: torch.Tensor, src: ModelConfig, p: KeepPlan, layer: int) -> torch.Tensor:
    h = p.hidden
    if name in ("input_layernorm.weight", "pre_mlp_layernorm.weight"):
        return w[h]
    if name == "self_attention.linear_qkv.weight":
        return w[_qkv_rows(src, p.groups[layer], p.heads[layer])][:, h]
    if name == "self_attention.linear_proj.weight":
        return w[h][:, _proj_cols(src, p.heads[layer])]
    if name == "mlp.linear_fc1.weight":
        f = p.ffn[layer]
        return w[torch.cat([f, f + src.ffn_hidden_size])][:, h]
    if name == "mlp.linear_fc2.weight":
        return w[h][:, p.ffn[layer]]
    raise PruneError(f"don't know how to prune decoder.layers.N.{name} (unsupported layer type)")


def fold_output(embedding: torch.Tensor, output: torch.Tensor | None, how: str) -> torch.Tensor:
    """The tied student's one matrix from the teacher's embedding and (untied) output layer."""
    if output is None or how == "embedding":
        return embedding
    if how == "output":
        return output
    if how == "mean":
        return 0.5 * (embedding + output)
    raise PruneError(f"--fold must be one of {FOLDS}")


def slice_state(tensors: dict[str, torch.Tensor], src: ModelConfig, dst: ModelConfig, p: KeepPlan,
                fold: str = "embedding") -> dict[str, torch.Tensor]:
    """The student's tensors (``state_dict`` names, layers renumbered 0..L'-1), as contiguous copies."""
    out: dict[str, torch.Tensor] = {}
    renumber = {old: new for new, old in enumerate(p.layers)}
    h = p.hidden
    for name, w in tensors.items():
        match = _LAYER.match(name)
        if match:
            layer = int(match.group(1))
            if layer in renumber:
                suffix = match.group(2)
                out[f"decoder.layers.{renumber[layer]}.{suffix}"] = slice_layer(suffix, w, src, p, layer)
        elif name == "decoder.final_layernorm.weight":
            out[name] = w[h]
        elif name not in ("embedding.word_embeddings.weight", "output_layer.weight"):
            raise PruneError(f"don't know how to prune {name}")
    embedding = tensors["embedding.word_embeddings.weight"][:, h]
    output = tensors["output_layer.weight"][:, h] if "output_layer.weight" in tensors else None
    if dst.tie_embeddings:
        out["embedding.word_embeddings.weight"] = fold_output(embedding, output, fold)
    else:
        out["embedding.word_embeddings.weight"] = embedding
        out["output_layer.weight"] = output if output is not None else embedding
    return {k: v.contiguous().clone() for k, v in out.items()}
