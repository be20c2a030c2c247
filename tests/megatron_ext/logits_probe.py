"""Write a checkpoint's logits on fixed tokens to a file (run plain for TP=1 or under torchrun for TP=2)."""
from __future__ import annotations

import sys

import torch


def main() -> None:
    ckpt_path, tp, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    from megatron_ext import parallel
    from megatron_ext.inference import load_for_inference, logits

    model, _ = load_for_inference(ckpt_path, tensor_model_parallel_size=tp)
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 256, (2, 64), generator=generator)
    result = logits(model, tokens)
    if parallel.is_rank0():
        torch.save(result, out)
    parallel.destroy()


if __name__ == "__main__":
    main()
