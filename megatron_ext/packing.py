"""Packed sequences in Megatron-Core: attention never crosses a conversation, positions restart.

A packed sample holds several conversations back to back in ``[seq_length]`` tokens. Its layout
is Megatron-LM's (``megatron/training/datasets/sft_dataset.py``): ``cu_seqlens`` ``[seq_length + 1]``
int32, the cumulative segment lengths ``0, L1, L1+L2, …, seq_length`` right-padded with copies of
``seq_length`` so samples collate; the tail padding (when the conversations do not fill the
sample) is a segment of its own. ``position_ids`` restart at 0 in every segment.

Two attention paths, chosen by the layer spec the model was built with:

* **Transformer Engine (GPU)**: Megatron-Core's packed-sequence path — the micro-batch is flattened
  to one ``[1, b·s]`` row with merged boundaries (``megatron.core.utils.
  flatten_batch_for_packed_sequences``) and passed as ``PackedSeqParams(qkv_format="thd",
  cu_seqlens_q/kv, max_seqlen_q/kv)``: TE's fused attention runs each segment separately, and RoPE
  is applied per segment from ``cu_seqlens`` (positions restart).
* **local spec (CPU, or GPU without TE)**: an explicit block-diagonal causal mask ``[b, 1, s, s]``
  (True = masked; the local ``DotProductAttention`` takes any mask) and RoPE driven by
  ``position_ids`` (:class:`PositionIdsRoPE`: GPTModel's rotary embedding otherwise uses
  ``0..s-1`` over the whole row, ignoring ``position_ids``).

Every pipeline stage needs the boundaries (each stage's attention masks its own layers). The
pipeline schedule passes only hidden states between stages, so each stage's ``forward_step``
reads ``cu_seqlens`` / ``position_ids`` from its *own* data iterator (our ``MicroBatches`` exist on
every rank) — the role Megatron-LM's ``get_batch_on_this_tp_rank`` plays when it broadcasts
``cu_seqlens`` to intermediate stages.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def segment_ids(cu_seqlens: torch.Tensor, seq_length: int) -> torch.Tensor:
    """``[b, s]`` segment index of every position (0 for the first conversation, …).

    ``cu_seqlens``: ``[b, n]`` int (padded with ``seq_length``) or ``[n]`` for one sample.
    """
    cu = cu_seqlens if cu_seqlens.dim() == 2 else cu_seqlens.unsqueeze(0)
    positions = torch.arange(seq_length, device=cu.device, dtype=cu.dtype).expand(cu.shape[0], seq_length)
    return torch.searchsorted(cu[:, 1:].contiguous(), positions.contiguous(), right=True)


def block_causal_mask(cu_seqlens: torch.Tensor, seq_length: int) -> torch.Tensor:
    """``[b, 1, s, s]`` bool attention mask, True where query i must NOT see key j.

    Masked: j > i (causal) or j in another segment than i. Memory: b·s² bytes.
    """
    seg = segment_ids(cu_seqlens, seq_length)
    same = seg.unsqueeze(2) == seg.unsqueeze(1)
    causal = torch.ones(seq_length, seq_length, dtype=torch.bool, device=seg.device).tril()
    return ~(same & causal).unsqueeze(1)


def position_ids_from(cu_seqlens: torch.Tensor, seq_length: int) -> torch.Tensor:
    """``[b, s]`` positions restarting at 0 in every segment."""
    cu = cu_seqlens if cu_seqlens.dim() == 2 else cu_seqlens.unsqueeze(0)
    seg = segment_ids(cu, seq_length)
    starts = cu.gather(1, seg.to(torch.int64))
    return torch.arange(seq_length, device=cu.device).expand_as(seg) - starts


def thd_params(cu_seqlens: torch.Tensor, max_seqlen: torch.Tensor, seq_length: int):
    """``PackedSeqParams`` (THD) for a micro-batch flattened to one ``[1, b·s]`` row.

    Merges the per-sample boundaries with Megatron-Core's own helper; raises ValueError when a
    row's boundaries do not end at ``seq_length``.
    """
    from megatron.core.packed_seq_params import PackedSeqParams
    from megatron.core.utils import _merge_cu_seqlens_across_micro_batch

    cu = cu_seqlens if cu_seqlens.dim() == 2 else cu_seqlens.unsqueeze(0)
    if not bool((cu.max(dim=1).values == seq_length).all()):
        raise ValueError(f"cu_seqlens rows must end at seq_length {seq_length}")
    merged = _merge_cu_seqlens_across_micro_batch(cu.to(torch.int32), seq_length)
    longest = int(max_seqlen.max())
    return PackedSeqParams(qkv_format="thd", cu_seqlens_q=merged, cu_seqlens_kv=merged,
                           max_seqlen_q=longest, max_seqlen_kv=longest)


def unwrap_gpt(model):
    """The ``GPTModel`` inside DDP / Float16Module wrappers."""
    while hasattr(model, "module"):
        model = model.module
    return model


class PositionIdsRoPE:
    """Make a ``GPTModel``'s rotary embedding follow per-token ``position_ids``.

    Megatron-Core's ``GPTModel`` computes RoPE for positions ``0..s-1`` of the whole row and never
    reads ``position_ids`` (only the THD path restarts positions, from ``cu_seqlens``). This
    replaces the rotary module's ``forward`` on this one model instance: while ``position_ids``
    (``[b, s]``) is set, it returns the table rows of those positions, ``[s, b, 1, dim]``
    (broadcast over heads by ``apply_rotary_pos_emb``); with ``None`` it is the stock forward.
    No weights change (RoPE has none), so checkpoints are unaffected.
    """

    def __init__(self, gpt_model) -> None:
        self.rope = getattr(gpt_model, "rotary_pos_emb", None)
        if self.rope is None:
            raise TypeError("model has no rotary_pos_emb (position_embedding_type must be 'rope')")
        self._stock = self.rope.forward
        self.position_ids: torch.Tensor | None = None
        self.rope.forward = self._forward

    def _forward(self, max_seq_len: int, offset: int = 0, packed_seq: bool = False, cp_group=None):
        if self.position_ids is None or packed_seq:
            return self._stock(max_seq_len, offset, packed_seq, cp_group)
        pos = self.position_ids
        table = self._stock(max(max_seq_len, int(pos.max()) + 1), 0, False, cp_group)  # [S, 1, 1, dim]
        return table[:, 0, 0, :][pos.t().to(table.device)].unsqueeze(2)  # [s, b, 1, dim]


@dataclass
class PackedInputs:
    """What ``GPTModel.forward`` takes for one packed micro-batch (either attention path)."""

    tokens: torch.Tensor
    position_ids: torch.Tensor
    labels: torch.Tensor | None
    loss_mask: torch.Tensor
    attention_mask: torch.Tensor | None
    packed_seq_params: object | None


def prepare(batch: dict, device, *, use_thd: bool) -> PackedInputs:
    """Move a collated packed micro-batch to ``device`` and build its attention inputs.

    ``batch``: ``tokens``/``labels``/``loss_mask``/``position_ids`` ``[b, s]``, ``cu_seqlens``
    ``[b, s + 1]``, ``max_seqlen`` ``[b]``. With ``use_thd`` everything is flattened to ``[1, b·s]``
    (Megatron-Core's ``flatten_batch_for_packed_sequences``) and boundaries go into
    ``PackedSeqParams``; otherwise the block-diagonal causal mask is built.
    """
    b = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    s = b["tokens"].shape[1]
    if use_thd:
        from megatron.core.utils import flatten_batch_for_packed_sequences

        params = thd_params(b["cu_seqlens"], b["max_seqlen"], s)
        flat = flatten_batch_for_packed_sequences({k: b[k] for k in ("tokens", "labels", "loss_mask", "position_ids")}
                                                  | {"cu_seqlens": b["cu_seqlens"], "max_seqlen": b["max_seqlen"]})
        return PackedInputs(flat["tokens"], flat["position_ids"], flat["labels"], flat["loss_mask"], None, params)
    return PackedInputs(b["tokens"], b["position_ids"], b.get("labels"), b["loss_mask"],
                        block_causal_mask(b["cu_seqlens"], s), None)


def packed_forward(model, inputs: PackedInputs, rope: PositionIdsRoPE | None, *, with_labels: bool = True):
    """``model(...)`` on one packed micro-batch: per-token losses ``[b, s]`` (or logits without labels)."""
    if rope is not None:
        rope.position_ids = inputs.position_ids if inputs.packed_seq_params is None else None
    try:
        return model(inputs.tokens, inputs.position_ids, attention_mask=inputs.attention_mask,
                     labels=inputs.labels if with_labels else None, packed_seq_params=inputs.packed_seq_params)
    finally:
        if rope is not None:
            rope.position_ids = None


__all__ = ["PackedInputs", "PositionIdsRoPE", "block_causal_mask", "packed_forward", "position_ids_from", "prepare",
           "segment_ids", "thd_params", "unwrap_gpt"]
