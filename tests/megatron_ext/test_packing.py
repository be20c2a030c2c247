"""Packed-sequence inputs without a model: the block-diagonal causal mask, restarting positions,
the THD boundaries Transformer Engine receives (merged across a micro-batch), and the sample layout."""
from __future__ import annotations

import numpy as np
import torch

from megatron_ext import packing
from megatron_ext.sft_data import sample_arrays


def _sample(lengths: list[int], s: int) -> dict:
    convs = [(np.arange(1, n + 1) + 10 * k, np.r_[np.zeros(n // 2), np.ones(n - n // 2)].astype(np.int64))
             for k, n in enumerate(lengths)]
    return sample_arrays(convs, s, pad_id=1)


def test_sample_layout_keeps_targets_inside_each_conversation():
    x = _sample([4, 3], 10)
    assert x["tokens"].tolist() == [1, 2, 3, 4, 11, 12, 13, 1, 1, 1]
    assert x["labels"].tolist()[:7] == [2, 3, 4, 1, 12, 13, 1]  # the last token of each predicts nothing
    assert x["loss_mask"].tolist() == [0, 1, 1, 0, 1, 1, 0, 0, 0, 0]
    assert x["position_ids"].tolist() == [0, 1, 2, 3, 0, 1, 2, 0, 1, 2]
    assert x["cu_seqlens"].tolist()[:5] == [0, 4, 7, 10, 10] and set(x["cu_seqlens"].tolist()[3:]) == {10}
    assert int(x["max_seqlen"]) == 4


def test_block_causal_mask_and_positions():
    cu = _sample([4, 3], 10)["cu_seqlens"]
    mask = packing.block_causal_mask(cu, 10)[0, 0]  # True = masked
    allowed = ~mask
    seg = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    for i in range(10):
        for j in range(10):
            assert bool(allowed[i, j]) == (j <= i and seg[i] == seg[j]), (i, j)
    assert packing.position_ids_from(cu, 10)[0].tolist() == [0, 1, 2, 3, 0, 1, 2, 0, 1, 2]


def test_thd_inputs_flatten_the_micro_batch_with_merged_boundaries():
    a, b = _sample([4, 3], 10), _sample([10], 10)
    batch = {k: torch.stack([a[k], b[k]]) for k in a}
    inputs = packing.prepare(batch, "cpu", use_thd=True)
    assert inputs.tokens.shape == (1, 20) and inputs.attention_mask is None
    p = inputs.packed_seq_params
    assert p.qkv_format == "thd"
    assert p.cu_seqlens_q.tolist() == [0, 4, 7, 10, 20] and p.cu_seqlens_q.dtype == torch.int32
    assert p.max_seqlen_q == p.max_seqlen_kv == 10
    local = packing.prepare(batch, "cpu", use_thd=False)
    assert local.tokens.shape == (2, 10) and local.attention_mask.shape == (2, 1, 10, 10)
