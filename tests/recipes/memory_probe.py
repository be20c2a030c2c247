"""Measure what a real Megatron-Core GPTModel holds in memory during one forward/backward on CPU.

``python -m tests.recipes.memory_probe CASES_JSON`` takes ``[{"recipe": NAME, "overrides": [...],
"seq_lengths": [...]} | {"kd": "bf16"|"fp32", "tokens": N, "vocab": V}, …]`` and prints one JSON line per case and sequence length: ``stored`` — bytes of tensors created during the forward and still alive when it ends (what
autograd keeps for backward, plus buffers), and ``peak`` — the most such bytes alive at any moment of
forward + backward. Parameters, their gradients (allocated by a warm-up step) and the inputs are the
baseline and are not counted, like the planner's activation terms.

Tensors are tracked at the dispatcher (``TorchDispatchMode``): every new storage an op creates is added
and dropped once its ``StorageWeakRef`` expires, which is checked after every op. Runs in its own
process because Megatron's parallel state is process-global.
"""
from __future__ import annotations

import argparse
import json

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class LiveTensorBytes(TorchDispatchMode):
    """Bytes of storages created under this mode and still referenced (``live``) and their maximum (``peak``)."""

    def __init__(self, baseline: list[torch.Tensor]):
        super().__init__()
        self.baseline = {t.untyped_storage().data_ptr() for t in baseline}
        self.refs: dict[int, tuple[StorageWeakRef, int]] = {}
        self.live = 0
        self.peak = 0

    def sweep(self) -> None:
        for key in [k for k, (ref, _) in self.refs.items() if ref.expired()]:
            self.live -= self.refs.pop(key)[1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.sweep()
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                key = storage.data_ptr()
                if key in self.baseline or key in self.refs or storage.nbytes() == 0:
                    continue
                self.refs[key] = (StorageWeakRef(storage), storage.nbytes())
                self.live += storage.nbytes()
        self.peak = max(self.peak, self.live)
        return out


def measure(recipe, seq_lengths: list[int]) -> list[dict]:
    """Stored and peak bytes for each sequence length (model-parallel state must be initialised)."""
    from megatron.core import parallel_state

    from megatron_ext.model import build_model, transformer_config

    perf = recipe.perf
    recompute = {} if perf.recompute_granularity == "none" else dict(
        recompute_granularity=perf.recompute_granularity, recompute_method=perf.recompute_method,
        recompute_num_layers=perf.recompute_num_layers, recompute_modules=list(perf.recompute_modules))
    model = build_model(recipe=recipe, config=transformer_config(recipe=recipe, **recompute))
    b, vocab = recipe.train.micro_batch_size, recipe.model.vocab_size
    results = []
    for s in seq_lengths:
        # DotProductAttention's score buffer lives in Megatron's global memory buffer and only grows: start
        # each measurement with a fresh one so it is sized for this sequence length, as in a real run.
        parallel_state.destroy_global_memory_buffer()
        parallel_state._set_global_memory_buffer()
        gen = torch.Generator().manual_seed(s)
        tokens = torch.randint(0, vocab, (b, s), generator=gen)
        labels = torch.randint(0, vocab, (b, s), generator=gen)
        position_ids = torch.arange(s).expand(b, s)
        model(tokens, position_ids, attention_mask=None, labels=labels).sum().backward()  # grads now exist
        baseline = [*model.parameters(), *(p.grad for p in model.parameters() if p.grad is not None),
                    *model.buffers(), tokens, labels, position_ids]
        mode = LiveTensorBytes(baseline)
        with mode:
            loss = model(tokens, position_ids, attention_mask=None, labels=labels).sum()
            mode.sweep()
            stored = mode.live
            loss.backward()
        results.append({"seq_length": s, "micro_batch_size": b, "stored": stored, "peak": mode.peak})
    return results


def measure_kd_loss(tokens: int, vocab: int, dtype: str) -> dict:
    """The ``midm distill`` loss (forward KL on vocab-parallel logits) alone: bytes kept for backward and its
    forward peak, with the student and teacher logits ``[1, tokens, vocab]`` as the baseline."""
    from megatron_ext.distiller import distill_loss
    from recipes import DistillConfig

    torch_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(1, tokens, vocab, generator=gen).to(torch_dtype).requires_grad_()
    teacher = torch.randn(1, tokens, vocab, generator=gen).to(torch_dtype)
    labels = torch.randint(0, vocab, (1, tokens), generator=gen)
    mask = torch.ones(1, tokens)
    mode = LiveTensorBytes([student, teacher, labels, mask])
    with mode:
        loss = distill_loss(mask, labels, teacher, DistillConfig(), student)[0]
        mode.sweep()
        stored, forward_peak = mode.live, mode.peak
    loss.backward()
    return {"kd": dtype, "tokens": tokens, "vocab": vocab, "stored": stored, "forward_peak": forward_peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("cases", help='JSON: [{"recipe": "tiny", "overrides": [...], "seq_lengths": [64, …]}, …]')
    args = parser.parse_args()
    from megatron_ext import parallel
    from recipes import get_recipe

    torch.set_num_threads(1)
    parallel.initialize(1, 1, seed=1234)
    for index, case in enumerate(json.loads(args.cases)):
        if "kd" in case:
            print(json.dumps({"case": index, **measure_kd_loss(case["tokens"], case["vocab"], case["kd"])}), flush=True)
            continue
        recipe = get_recipe(case["recipe"], case.get("overrides", []))
        for record in measure(recipe, case["seq_lengths"]):
            print(json.dumps({"case": index, **record}), flush=True)
    parallel.destroy()


if __name__ == "__main__":
    main()
