"""Activation-based importance on calibration data (Minitron, arXiv 2407.14679), via forward hooks.

One forward pass over the calibration windows collects everything both surgery stages need:

* **MLP neurons** — input of ``linear_fc2`` (the SwiGLU activation): mean |a| over the sequence,
  then L2 over the batch (accumulated as a sum of squares across micro-batches).
* **attention heads** — input of ``linear_proj`` (per-head attention output), same reduction per
  channel, then L2 over each head's ``kv_channels``.
* **embedding channels** — outputs of every ``input_layernorm`` and ``pre_mlp_layernorm``: same
  reduction per norm, then summed over norms.
* **blocks** — block importance 1 − cos(layer input, layer output), averaged over tokens and
  micro-batches (ShortGPT's "block influence"; used for depth pruning and scored DuS).

These are exactly the estimators of nvidia-modelopt 0.43's ``mcore_minitron`` (its hooks sum the
per-batch block scores where we average: the ranking is the same), so the kept sets agree — see
``prune_modelopt.py`` for the cross-check. Everything is accumulated in fp32.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from megatron_ext.calibration import forward, iterate_batches


def _mean_abs_sq(x: torch.Tensor) -> torch.Tensor:
    """[s, b, C] → Σ_b (mean_s |x|)² : [C] (sum of squares, so batches accumulate into an L2)."""
    return x.detach().float().abs().mean(dim=0).pow(2).sum(dim=0)


@dataclass
class Importance:
    """Importance scores of one model (higher = keep)."""

    hidden: torch.Tensor  # [hidden_size]
    mlp: list[torch.Tensor]  # per layer [ffn_hidden_size]
    heads: list[torch.Tensor]  # per layer [num_attention_heads]
    blocks: torch.Tensor  # [num_layers]
    batches: int = 0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"blocks": [round(float(x), 6) for x in self.blocks], "batches": self.batches}


class _Collector:
    def __init__(self, model, kv_channels: int):
        self.kv_channels = kv_channels
        self.layers = list(model.decoder.layers)
        n = len(self.layers)
        self.norm_sq: dict[str, torch.Tensor] = {}
        self.mlp_sq: list[torch.Tensor | None] = [None] * n
        self.head_sq: list[torch.Tensor | None] = [None] * n
        self.block_sum = torch.zeros(n, dtype=torch.float64)
        self.batches = 0
        self.handles = []
        for i, layer in enumerate(self.layers):
            for norm_name in ("input_layernorm", "pre_mlp_layernorm"):
                norm = getattr(layer, norm_name)
                self.handles.append(norm.register_forward_hook(self._norm_hook(f"{i}.{norm_name}")))
            self.handles.append(layer.mlp.linear_fc2.register_forward_hook(self._input_hook(self.mlp_sq, i)))
            self.handles.append(layer.self_attention.linear_proj.register_forward_hook(
                self._input_hook(self.head_sq, i)))
            self.handles.append(layer.register_forward_hook(self._block_hook(i), with_kwargs=True))

    def _norm_hook(self, key: str):
        def hook(module, args, output):
            value = _mean_abs_sq(output)
            self.norm_sq[key] = self.norm_sq[key] + value if key in self.norm_sq else value

        return hook

    @staticmethod
    def _input_hook(store: list, index: int):
        def hook(module, args, output):
            value = _mean_abs_sq(args[0])
            store[index] = value if store[index] is None else store[index] + value

        return hook

    def _block_hook(self, index: int):
        def hook(module, args, kwargs, output):
            hidden_in = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
            hidden_out = output[0] if isinstance(output, tuple) else output
            cos = F.cosine_similarity(hidden_in.float(), hidden_out.float(), dim=-1)
            self.block_sum[index] += float(1.0 - cos.mean())

        return hook

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()

    def result(self) -> Importance:
        if self.batches == 0:
            raise ValueError("no calibration batches were run")
        hidden = torch.stack([v.sqrt() for v in self.norm_sq.values()]).sum(dim=0)
        heads = [sq.sqrt().view(-1, self.kv_channels).norm(dim=1) for sq in self.head_sq]
        return Importance(hidden=hidden.cpu(), mlp=[sq.sqrt().cpu() for sq in self.mlp_sq],
                          heads=[h.cpu() for h in heads], blocks=(self.block_sum / self.batches).float(),
                          batches=self.batches)


@torch.no_grad()
def measure(model, tokens: torch.Tensor, kv_channels: int, micro_batch_size: int = 4, progress=None) -> Importance:
    """Run ``model`` over calibration ``tokens`` [N, s] and return every importance score."""
    model.eval()
    collector = _Collector(model, kv_channels)
    try:
        total = (tokens.shape[0] + micro_batch_size - 1) // micro_batch_size
        for i, batch in enumerate(iterate_batches(tokens, micro_batch_size)):
            forward(model, batch)
            collector.batches += 1
            if progress is not None and (i + 1 == total or (i + 1) % max(1, total // 10) == 0):
                progress(f"calibration batch {i + 1}/{total}")
    finally:
        collector.close()
    return collector.result()
