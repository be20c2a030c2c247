"""Probe of one ``DPOTrainer`` (TP=PP=1), run as a script so Megatron's global state stays out of pytest.

    python dpo_probe.py REFERENCE POLICY PREFS_DIR RUN_ROOT OUT_JSON

1. Gradient check: the first global batch (2 micro-batches of 2 pairs) through the trainer's
   pipeline schedule (Megatron's vocab-parallel cross-entropy, the DPO loss function, the
   micro-batch normalisation, DDP's gradient buffers) against a plain-PyTorch implementation of the
   formula on the same batch: full logits → ``F.log_softmax`` → response-token sums → −log σ(β Δ)
   + w · NLL/|y_w|, averaged over pairs, ``torch.autograd.grad``.
2. Frozen reference: two real optimizer steps; the reference's tensors are compared bit for bit
   with a snapshot taken before, and it must hold no gradient and no optimizer state.
"""
from __future__ import annotations

import json
import sys

import torch
import torch.nn.functional as F


def plain_dpo_loss(policy, reference, micro_batches, beta: float, sft_weight: float) -> torch.Tensor:
    """The DPO objective written directly from its definition (Rafailov et al., eq. 7; RPO's NLL term)."""
    from megatron_ext.dpo_data import pairs_to_rows

    def seq_logps(model, tokens, positions, labels, mask):
        logits = model(tokens, positions, attention_mask=None).float()  # [2b, s, V]: no labels → logits
        token_logps = F.log_softmax(logits, dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
        return (token_logps * mask).sum(-1)

    total, pairs = torch.zeros(()), 0
    for batch in micro_batches:
        tokens, labels, mask, positions = (pairs_to_rows(batch[k]) for k in ("tokens", "labels", "loss_mask",
                                                                              "position_ids"))
        b = tokens.shape[0] // 2
        pi = seq_logps(policy, tokens, positions, labels, mask)
        with torch.no_grad():
            ref = seq_logps(reference, tokens, positions, labels, mask)
        logits = beta * ((pi[:b] - ref[:b]) - (pi[b:] - ref[b:]))
        per_pair = -F.logsigmoid(logits) + sft_weight * (-pi[:b] / mask[:b].sum(-1))
        total = total + per_pair.sum()
        pairs += b
    return total / pairs


def main(reference: str, policy: str, prefs: str, run_root: str, out: str) -> None:
    from megatron_ext import parallel
    from megatron_ext.dpo import OBJECTIVE, DPOTrainer
    from recipes import get_recipe

    torch.set_num_threads(1)
    recipe = get_recipe("tiny_dpo", [
        f"dpo.dataset={prefs}", f"logging.dir={run_root}", "logging.run_name=probe", "logging.tensorboard=false",
        "train.global_batch_size=4", "train.micro_batch_size=2", "dpo.epochs=none", "train.steps=2",
        "dpo.warmup_fraction=none", "scheduler.warmup_steps=0", f"checkpoint.load={policy}",
        "dpo.sft_loss_weight=0.5", "optimizer.lr=1e-3"])
    trainer = DPOTrainer(recipe, reference, resume="none")
    module = trainer.model[0].module
    params = [p for p in module.parameters() if p.requires_grad]

    # 1. plain PyTorch on the first global batch
    dataset, indices = trainer.train_batches.dataset, trainer.train_batches.indices(0)
    micro_batches = [torch.utils.data.default_collate([dataset[i] for i in mb]) for mb in indices]
    module.train()
    plain_loss = plain_dpo_loss(module, trainer.reference, micro_batches, recipe.dpo.beta, recipe.dpo.sft_loss_weight)
    plain_grads = torch.autograd.grad(plain_loss, params)
    untouched = all(float(p.main_grad.abs().max()) == 0.0 for p in params)

    # the trainer's path: pipeline schedule + loss function + DDP buffers (no optimizer step)
    trainer.model[0].zero_grad_buffer()
    trainer.optimizer.zero_grad()
    losses = trainer._run_batches(trainer.train_batches.stream(0), trainer.train_batches.num_microbatches,
                                  forward_only=False)
    ours = trainer._reduce_loss(losses, OBJECTIVE)
    grad_norm = torch.sqrt(sum((g.double() ** 2).sum() for g in plain_grads)).item()
    max_abs_diff = max(float((p.main_grad - g).abs().max()) for p, g in zip(params, plain_grads))

    # 2. frozen reference across real optimizer steps
    ref_params = dict(trainer.reference.named_parameters())
    before = {k: v.detach().clone() for k, v in ref_params.items()}
    policy_before = [p.detach().clone() for p in params]
    stream = trainer.train_batches.stream(0)
    steps = [trainer.train_step(stream) for _ in range(2)]
    optimizer_ids = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    result = {
        "plain_loss": float(plain_loss), "trainer_loss": ours, "grad_norm": grad_norm, "max_abs_grad_diff": max_abs_diff,
        "num_param_tensors": len(params), "plain_grads_left_buffers_untouched": untouched,
        "reference_bit_identical": all(torch.equal(before[k], v) for k, v in ref_params.items()),
        "reference_requires_grad": any(v.requires_grad for v in ref_params.values()),
        "reference_has_grad": any(v.grad is not None for v in ref_params.values()),
        "reference_in_optimizer": any(id(v) in optimizer_ids for v in ref_params.values()),
        "reference_training_mode": trainer.reference.training,
        "policy_changed": any(not torch.equal(a, p) for a, p in zip(policy_before, params)),
        "steps": steps,
    }
    with open(out, "w") as f:
        json.dump(result, f)
    trainer.close()
    parallel.destroy()


if __name__ == "__main__":
    main(*sys.argv[1:6])
