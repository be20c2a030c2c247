"""Packed vs unpacked SFT through the real ``SFTTrainer`` (run plain, or under torchrun for TP=2 / PP=2).

``python sft_probe.py DATA TP PP OUT.json`` builds ``tiny_sft`` (random init, seed fixed) on the
``midm data sft`` output DATA and, through the trainer's own ``forward_step`` and Megatron's
pipeline schedule, measures on the packed training samples holding ≥ 2 conversations:

* per-conversation assistant-token loss, packed (loss mask restricted to one conversation) vs
  unpacked (the conversation alone in a padded sample);
* the gradient of one packed step vs the same conversations unpacked (per-token normalisation:
  both must be the same objective);
* B-unchanged: conversation B's per-token losses (and, at PP=1, its logits) when the conversation
  A before it in the pack is replaced by other tokens of the same length.
"""
from __future__ import annotations

import json
import sys
import tempfile

import numpy as np
import torch


def main() -> None:
    data, tp, pp, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    from data_prep.sft.shards import SFTSplit
    from megatron_ext import packing, parallel
    from megatron_ext.sft import SFTTrainer
    from megatron_ext.sft_data import sample_arrays
    from recipes import get_recipe

    torch.set_num_threads(1)
    run_root = tempfile.mkdtemp(prefix="sft_probe_")
    recipe = get_recipe("tiny_sft", [f"sft.dataset={data}", f"parallel.tensor_model_parallel_size={tp}",
                                     f"parallel.pipeline_model_parallel_size={pp}", "train.micro_batch_size=1",
                                     "train.global_batch_size=1", "model.vocab_size=2048", "model.num_layers=2",
                                     f"logging.dir={run_root}", "logging.tensorboard=false"])
    trainer = SFTTrainer(recipe, resume="none")
    ps, s = trainer.ps, trainer.recipe.data.seq_length
    split = SFTSplit(data, "train")
    packs = [split.sample(i) for i in range(len(split)) if len(split.sample(i)) >= 2][:3]
    pad = int(split.index["pad_id"])

    def collate(sample: dict) -> dict:
        return {k: v.unsqueeze(0) for k, v in sample.items()}

    def only(sample: dict, lo: int, hi: int) -> dict:
        out = dict(sample)
        mask = torch.zeros_like(sample["loss_mask"])
        mask[lo:hi] = sample["loss_mask"][lo:hi]
        out["loss_mask"] = mask
        return out

    def forward_losses(batches: list[dict]) -> list[tuple[float, float]]:
        """(loss sum, target count) per micro-batch, visible on every rank."""
        trainer.model[0].eval()
        with torch.no_grad():
            got = trainer._run_batches(iter(batches), len(batches), forward_only=True)
        trainer.model[0].train()
        vec = torch.zeros(len(batches), 2, dtype=torch.float64)
        if ps.is_pipeline_last_stage() and ps.get_tensor_model_parallel_rank() == 0:
            for i, item in enumerate(got):
                vec[i] = item["lm loss"].to(vec)
        torch.distributed.all_reduce(vec)
        return [tuple(map(float, row)) for row in vec]

    packed_batches, unpacked_batches, spans = [], [], []
    for convs in packs:
        whole = sample_arrays(convs, s, pad)
        start = 0
        for ids, mask in convs:
            packed_batches.append(collate(only(whole, start, start + len(ids))))
            unpacked_batches.append(collate(sample_arrays([(ids, mask)], s, pad)))
            spans.append(len(ids))
            start += len(ids)
    packed = forward_losses(packed_batches)
    unpacked = forward_losses(unpacked_batches)
    per_conv = [(a / c, b / d) for (a, c), (b, d) in zip(packed, unpacked) if c > 0]
    loss_diff = max(abs(a - b) for a, b in per_conv)

    # the same conversations as one packed step and as unpacked steps: the gradients must agree
    def grads(batches: list[dict]) -> list[torch.Tensor]:
        trainer.model[0].zero_grad_buffer()
        trainer.optimizer.zero_grad()
        trainer._run_batches(iter(batches), len(batches), forward_only=False)
        return [p.main_grad.detach().clone() for p in trainer.model[0].parameters() if p.requires_grad]

    g_packed = grads([collate(sample_arrays(packs[0], s, pad))])
    g_unpacked = grads([collate(sample_arrays([c], s, pad)) for c in packs[0]])
    num = torch.tensor([max(float((a - b).abs().max()) for a, b in zip(g_packed, g_unpacked)),
                        max(float(a.abs().max()) for a in g_packed)])
    torch.distributed.all_reduce(num, op=torch.distributed.ReduceOp.MAX)

    # replace A (the first conversation) by other ids of the same length: B's losses/logits must not move
    (a_ids, a_mask), (b_ids, b_mask) = packs[0][0], packs[0][1]
    rng = np.random.default_rng(0)
    a_other = a_ids.copy()
    a_other[1:-1] = rng.integers(300, 1500, size=len(a_ids) - 2)
    lo, hi = len(a_ids), len(a_ids) + len(b_ids)
    orig = sample_arrays([(a_ids, a_mask), (b_ids, b_mask)] + list(packs[0][2:]), s, pad)
    repl = sample_arrays([(a_other, a_mask), (b_ids, b_mask)] + list(packs[0][2:]), s, pad)
    b_loss = forward_losses([collate(only(orig, lo, hi)), collate(only(repl, lo, hi))])
    a_loss = forward_losses([collate(only(orig, 0, lo)), collate(only(repl, 0, lo))])
    result = {"tp": tp, "pp": pp, "conversations": len(per_conv), "max_abs_loss_diff": loss_diff,
              "per_conversation": per_conv, "grad_max_abs_diff": float(num[0]), "grad_max_abs": float(num[1]),
              "b_loss_with_a": b_loss[0][0], "b_loss_with_a_replaced": b_loss[1][0],
              "a_loss_changed": abs(a_loss[0][0] - a_loss[1][0])}
    if pp == 1:
        trainer.model[0].eval()
        with torch.no_grad():
            outs = [packing.packed_forward(trainer.model[0], packing.prepare(collate(x), "cpu", use_thd=False),
                                           trainer.ropes[id(trainer.model[0])], with_labels=False) for x in (orig, repl)]
        diff = torch.tensor([float((outs[0][:, lo:hi] - outs[1][:, lo:hi]).abs().max()),
                             float((outs[0][:, :lo] - outs[1][:, :lo]).abs().max())])
        torch.distributed.all_reduce(diff, op=torch.distributed.ReduceOp.MAX)
        result["b_logits_max_abs_diff"], result["a_logits_max_abs_diff"] = map(float, diff)
    # the rotary table handed to attention follows position_ids (restarting per conversation)
    pos = collate(orig)["position_ids"]
    trainer.ropes[id(trainer.model[0])].position_ids = pos
    table = trainer.ropes[id(trainer.model[0])].rope.forward(s)
    trainer.ropes[id(trainer.model[0])].position_ids = None
    stock = trainer.ropes[id(trainer.model[0])].rope.forward(s)
    result["rope_follows_position_ids"] = bool(torch.equal(table[:, 0, 0], stock[:, 0, 0][pos[0]]))
    result["position_ids_restart"] = int((pos[0] == 0).sum())
    if parallel.is_rank0():
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
    trainer.close()


if __name__ == "__main__":
    main()
