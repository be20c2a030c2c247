"""Direct Preference Optimization for ``midm dpo``: the loss and the ``DPOTrainer``.

DPO (Rafailov et al., arXiv 2305.18290, eq. 7) with the sigmoid (Bradley–Terry) loss::

    r_w = β (log π(y_w|x) − log π_ref(y_w|x)),   r_l = β (log π(y_l|x) − log π_ref(y_l|x))
    L   = −log σ(r_w − r_l)  [+ sft_loss_weight · (−log π(y_w|x) / |y_w|)]

Sequence log-probabilities are sums over the response tokens (the loss mask of ``midm data
prefs``: assistant content and its ``<|eot_id|>``). Per token, log π(y_t | …) is minus
Megatron-Core's vocabulary-parallel cross-entropy, which ``GPTModel`` computes when given labels:
the max and the partition function are all-reduced over the tensor-parallel group and the target
logit is picked on the shard that owns it, so the full vocabulary is never gathered (and the
backward is Megatron's fused one). The optional NLL term on the chosen response is RPO's
(Pang et al., arXiv 2404.19733), normalised by its length.

The reference model is ``distiller.frozen_copy_on_last_stage`` — the distillation teacher's
machinery: built whole on the pipeline-last ranks at the policy's TP size and precision, no
gradients, no optimizer state, eval mode, and never part of a checkpoint. Everything else (loop,
optimizer, checkpoints, resume, signals, logging) is ``Trainer``'s; this module overrides the data
seam (pairs, see ``dpo_data.py``), ``forward_step`` and what is logged. As in ``midm sft``, the
policy adopts the model geometry of its initial checkpoint (``checkpoint.load``), ``data.seq_length``
comes from the data, and ``dpo.epochs`` / ``dpo.warmup_fraction`` set the length and warmup.

Loss normalisation: each micro-batch returns (Σ pair losses, number of pairs), so the schedule's
division gives the mean over the pairs of the global batch, exactly (every micro-batch holds the
same number of pairs).
"""
from __future__ import annotations

import copy
import math
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

from megatron_ext.data import DataError
from megatron_ext.dpo_data import build_pair_datasets, check_split, pairs_to_rows, read_index
from megatron_ext.posttrain import adopt_model_and_data, replaced_steps
from megatron_ext.tokenizer_check import check_checkpoints_agree, check_data_against_checkpoint
from megatron_ext.trainer import Trainer
from midm.errors import MidmError
from recipes import DPOConfig, Recipe, RecipeError

# Logged {sum, count} pairs → metric names (train: as is; validation: with a val_ prefix).
METRICS = {"dpo loss": "dpo_loss", "reward accuracy": "reward_accuracy", "chosen reward": "chosen_reward",
           "rejected reward": "rejected_reward", "margin": "margin", "sft loss": "sft_loss"}
OBJECTIVE = "objective"


class DPOError(MidmError, RuntimeError):
    """A reference model that cannot serve this policy (another vocabulary)."""


def sequence_logps(token_logps: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """``[b, s]`` per-token log-probabilities → ``[b]`` sums over the masked (response) tokens."""
    return (token_logps.float() * loss_mask.float()).sum(dim=-1)


def dpo_terms(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
              ref_rejected: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
    """Per-pair DPO quantities, each ``[b]``: ``loss`` (−log σ(margin)), ``chosen_reward``,
    ``rejected_reward`` and ``margin`` (= chosen − rejected reward), from summed log-probabilities."""
    chosen = beta * (policy_chosen - ref_chosen)
    rejected = beta * (policy_rejected - ref_rejected)
    margin = chosen - rejected
    return {"loss": -F.logsigmoid(margin), "chosen_reward": chosen, "rejected_reward": rejected, "margin": margin}


def dpo_loss(loss_mask: torch.Tensor, ref_logps: torch.Tensor, cfg: DPOConfig, output_tensor: torch.Tensor):
    """Loss function for the pipeline schedule (one micro-batch of ``b`` pairs, rows chosen-first).

    Args:
        loss_mask: ``[2b, s]`` response-target mask.
        ref_logps: ``[2b]`` the reference's summed log-probabilities.
        output_tensor: ``[2b, s]`` the policy's per-token cross-entropy (−log π of each label).

    Returns:
        (Σ over pairs of the objective, number of pairs, logged ``{name: [sum, count]}``).
    """
    mask = loss_mask.float()
    policy = sequence_logps(-output_tensor, mask)
    b = policy.shape[0] // 2
    terms = dpo_terms(policy[:b], policy[b:], ref_logps[:b], ref_logps[b:], cfg.beta)
    chosen_tokens = mask[:b].sum(dim=-1)
    nll_per_token = -policy[:b] / chosen_tokens.clamp(min=1)  # RPO's length-normalised NLL of y_w
    objective = terms["loss"].sum()
    if cfg.sft_loss_weight:
        objective = objective + cfg.sft_loss_weight * nll_per_token.sum()
    pairs = torch.tensor(float(b), device=policy.device)
    detached = {k: v.detach() for k, v in terms.items()}
    logged = {
        OBJECTIVE: torch.stack([objective.detach(), pairs]),
        "dpo loss": torch.stack([detached["loss"].sum(), pairs]),
        "reward accuracy": torch.stack([(detached["margin"] > 0).float().sum(), pairs]),
        "chosen reward": torch.stack([detached["chosen_reward"].sum(), pairs]),
        "rejected reward": torch.stack([detached["rejected_reward"].sum(), pairs]),
        "margin": torch.stack([detached["margin"].sum(), pairs]),
        # token-mean NLL of the chosen responses: how the language modelling moves under DPO
        "sft loss": torch.stack([-policy[:b].detach().sum(), chosen_tokens.sum()]),
    }
    return objective, torch.tensor(b, dtype=torch.int, device=policy.device), logged


def dpo_recipe(recipe: Recipe) -> tuple[Recipe, list[str]]:
    """The recipe a DPO run trains with, and notes on what was derived (no process group needed).

    Raises:
        RecipeError: no ``dpo`` section or no ``dpo.dataset``.
        DataError: the dataset is missing, was tokenized with another tokenizer than the initial
            checkpoint's, or is longer than the model's positions.
        CheckpointError: ``checkpoint.load`` is not a checkpoint.
    """
    if recipe.dpo is None or not recipe.dpo.dataset:
        raise RecipeError(f"recipe {recipe.name!r} needs dpo.dataset (the output of `midm data prefs`): pass "
                          "--data DIR or --set dpo.dataset=DIR, and use a *_dpo recipe")
    out = copy.deepcopy(recipe)
    index = read_index(out.dpo.dataset)
    notes = adopt_model_and_data(out, index, out.dpo.dataset, initial="initial", built_for="pairs were built for",
                                 error=DataError, made_by="midm data prefs")
    pairs = index["splits"]["train"]["pairs"]
    if out.dpo.epochs is not None:
        steps = max(1, math.ceil(out.dpo.epochs * pairs / out.train.global_batch_size))
        notes.append(f"train.steps = {steps} ({out.dpo.epochs} epochs of {pairs} pairs at global batch "
                     f"{out.train.global_batch_size}){replaced_steps(out.train.steps, steps, 'dpo')}")
        out.train.steps = steps
    if out.dpo.warmup_fraction is not None:
        out.scheduler.warmup_steps = round(out.dpo.warmup_fraction * out.train.steps)
    return out, notes


def reference_recipe(policy: Recipe, reference_path: str) -> Recipe:
    """The reference laid out like the policy (TP, precision) with its checkpoint's geometry.

    Raises:
        DPOError: the vocabularies differ (log-ratios over different tokenizations are meaningless).
        TokenizerMismatchError: the pairs were made with another tokenizer than the reference records, or
            the policy's ``checkpoint.load`` records another than the reference (``checkpoint.allow_tokenizer_change``
            to proceed).
        CheckpointError: ``reference_path`` is not a checkpoint.
    """
    from megatron_ext.loading import read_recipe

    saved = read_recipe(reference_path)
    if saved.model.vocab_size != policy.model.vocab_size:
        raise DPOError(f"reference vocabulary {saved.model.vocab_size} != policy {policy.model.vocab_size}: "
                       "DPO compares the two models' log-probabilities of the same tokens")
    check_data_against_checkpoint(policy, reference_path, role="reference")
    check_checkpoints_agree(reference_path, "reference", policy.checkpoint.load, "initial",
                            allow=policy.checkpoint.allow_tokenizer_change)
    recipe = copy.deepcopy(policy)
    recipe.name = saved.name
    recipe.model = copy.deepcopy(saved.model)
    return recipe


class DPOTrainer(Trainer):
    """``Trainer`` on preference pairs with a frozen reference (see the module docstring)."""

    sequences_per_sample = 2
    loss_key = OBJECTIVE

    def __init__(self, recipe: Recipe, reference: str, resume: str = "auto"):
        """Raises (before any process group starts) what :func:`dpo_recipe` and :func:`reference_recipe` raise."""
        from megatron_ext.distiller import frozen_copy_on_last_stage

        recipe, notes = dpo_recipe(recipe)
        ref_recipe = reference_recipe(recipe, reference)
        super().__init__(recipe, resume)
        for note in notes:
            self._print(note)
        self.reference_path = reference
        self.reference = frozen_copy_on_last_stage(reference, ref_recipe)
        self._print(f"DPO on {recipe.dpo.dataset} against the frozen reference {reference} "
                    f"(dpo.beta={recipe.dpo.beta}, dpo.sft_loss_weight={recipe.dpo.sft_loss_weight})")

    # ---------------------------------------------------------------- data seam
    def check_data(self) -> None:
        root = self.recipe.dpo.dataset
        for split, info in read_index(root)["splits"].items():
            if info["pairs"]:
                check_split(Path(root) / split, self.recipe.model.vocab_size, self.recipe.data.seq_length)

    def build_datasets(self, train_samples: int, valid_samples: int):
        d = self.recipe.data
        return build_pair_datasets(self.recipe.dpo.dataset, d.seq_length, d.seed, train_samples, valid_samples)

    # ---------------------------------------------------------------- step
    def forward_step(self, data_iterator, model):
        batch = next(data_iterator)
        dev = torch.cuda.current_device() if torch.cuda.is_available() else "cpu"
        tokens, labels, loss_mask, positions = (pairs_to_rows(batch[k]).to(dev, non_blocking=True)
                                                for k in ("tokens", "labels", "loss_mask", "position_ids"))
        ref_logps = None
        if self.ps.is_pipeline_last_stage():
            with torch.no_grad():
                ref_logps = sequence_logps(-self.reference(tokens, positions, attention_mask=None, labels=labels),
                                           loss_mask)
        output = model(tokens, positions, attention_mask=None, labels=labels)  # last stage: [2b, s] CE
        return output, partial(dpo_loss, loss_mask, ref_logps, self.recipe.dpo)

    # ---------------------------------------------------------------- logging
    def step_metrics(self, losses: list[dict]) -> dict:
        return {name: self._reduce_loss(losses, key) for key, name in METRICS.items()}

    def eval_record(self) -> dict:
        losses = self.eval_losses()
        if losses is None:
            return {"val_loss": None}
        return {"val_loss": self._reduce_loss(losses, OBJECTIVE),
                **{f"val_{name}": self._reduce_loss(losses, key) for key, name in METRICS.items()}}
