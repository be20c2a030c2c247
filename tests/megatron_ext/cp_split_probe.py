"""Run under ``torchrun --nproc_per_node 2``: CP = 2 groups on gloo and this rank's share of a batch.

Writes ``{"rank": r, "tokens": [...]}`` for the batch ``tokens = arange(16)`` split by
``megatron_ext.data.split_for_context_parallel`` (context parallelism itself needs Transformer Engine;
the split and the process groups do not).
"""
from __future__ import annotations

import json
import sys

import torch

from megatron_ext import parallel
from megatron_ext.data import split_for_context_parallel

if __name__ == "__main__":
    parallel.initialize(1, 1, context_parallel_size=2)
    seq = torch.arange(16).unsqueeze(0)
    batch = {"tokens": seq, "labels": seq + 1, "loss_mask": torch.ones(1, 16), "position_ids": seq}
    out = split_for_context_parallel(batch)
    rank = torch.distributed.get_rank()
    from megatron.core import parallel_state as ps

    record = {"rank": rank, "cp_rank": ps.get_context_parallel_rank(), "dp": ps.get_data_parallel_world_size(),
              **{k: v.tolist() for k, v in out.items()}}
    with open(f"{sys.argv[1]}.{rank}.json", "w") as f:
        json.dump(record, f)
    parallel.destroy()
