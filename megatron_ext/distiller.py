"""The distillation step for ``midm distill``: vocab-parallel forward KL and the ``Distiller`` trainer.

Kept apart from the CLI module (``commands/distill.py``) so ``midm distill --help`` does not import
torch. See ``commands/distill.py`` for the method and the teacher's placement under TP/PP.
"""
from __future__ import annotations

import copy
from functools import partial

import torch

from megatron_ext.trainer import Trainer
from midm.errors import MidmError
from recipes import Recipe


class DistillError(MidmError, RuntimeError):
    """A teacher that cannot distil into this student (vocabulary, geometry)."""


# ---------------------------------------------------------------- vocab-parallel math
def _tp_size_rank() -> tuple[int, int]:
    from megatron.core import parallel_state as ps

    if not ps.model_parallel_is_initialized():
        return 1, 0
    return ps.get_tensor_model_parallel_world_size(), ps.get_tensor_model_parallel_rank()


def _tp_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over the tensor-parallel group (all-reduce forward, identity backward)."""
    from megatron.core.tensor_parallel import reduce_from_tensor_model_parallel_region

    return reduce_from_tensor_model_parallel_region(x) if _tp_size_rank()[0] > 1 else x


def tp_log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log-softmax over a vocabulary split across the tensor-parallel group (last dim = local shard)."""
    from megatron.core import parallel_state as ps

    with torch.no_grad():
        peak = logits.max(dim=-1, keepdim=True).values
        if _tp_size_rank()[0] > 1:
            torch.distributed.all_reduce(peak, op=torch.distributed.ReduceOp.MAX,
                                         group=ps.get_tensor_model_parallel_group())
    shifted = logits - peak
    return shifted - _tp_sum(shifted.exp().sum(dim=-1, keepdim=True)).log()


def tp_pick(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``values[..., labels]`` for a vocabulary-sharded last dim (summed over the TP group)."""
    local = values.shape[-1]
    index = labels - _tp_size_rank()[1] * local
    inside = (index >= 0) & (index < local)
    return _tp_sum(values.gather(-1, index.clamp(0, local - 1).unsqueeze(-1)).squeeze(-1) * inside)


def kd_token_losses(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                    temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(forward KL · T², cross-entropy) per token, both ``[b, s]``, from vocab-sharded logits."""
    student = student_logits.float()
    with torch.no_grad():
        t_logp = tp_log_softmax(teacher_logits.float() / temperature)
    s_logp_t = tp_log_softmax(student / temperature)
    kl = _tp_sum((t_logp.exp() * (t_logp - s_logp_t)).sum(dim=-1))
    ce = -tp_pick(tp_log_softmax(student) if temperature != 1.0 else s_logp_t, labels)
    return kl * temperature ** 2, ce


def distill_loss(loss_mask, labels, teacher_logits, distill_cfg, output_tensor):
    """Loss function for the pipeline schedule: (loss_sum, num_tokens, logged {sum, count} pairs)."""
    kl, ce = kd_token_losses(output_tensor, teacher_logits, labels, distill_cfg.temperature)
    mask = loss_mask.float()
    kl_sum, ce_sum = (kl * mask).sum(), (ce * mask).sum()
    loss_sum = distill_cfg.kd_weight * kl_sum
    if distill_cfg.lm_loss_weight:
        loss_sum = loss_sum + distill_cfg.lm_loss_weight * ce_sum
    count = mask.sum()
    return loss_sum, count.to(torch.int), {"lm loss": torch.stack([ce_sum.detach(), count]),
                                          "kd loss": torch.stack([kl_sum.detach(), count])}


# ---------------------------------------------------------------- teacher
def teacher_recipe(student: Recipe, teacher_path: str) -> Recipe:
    """The teacher laid out like the student (TP, precision), with the checkpoint's geometry.

    Raises:
        DistillError: the vocabulary sizes differ, or the teacher is not ``distill.teacher_recipe``'s geometry.
        TokenizerMismatchError: teacher and initial student (``checkpoint.load``) record other tokenizers.
    """
    from megatron_ext import checkpoint as ckpt
    from recipes import get_recipe

    saved = ckpt.read_recipe(teacher_path)
    if saved.model.vocab_size != student.model.vocab_size:
        raise DistillError(f"teacher vocabulary {saved.model.vocab_size} != student {student.model.vocab_size}: "
                           "logit distillation needs the same tokenizer")
    from megatron_ext.tokenizer_check import check_checkpoints_agree

    check_checkpoints_agree(teacher_path, "teacher", student.checkpoint.load, "initial",
                            allow=student.checkpoint.allow_tokenizer_change)
    named = student.distill.teacher_recipe
    if named:
        diff = saved.model.geometry_diff(get_recipe(named).model)
        if diff:
            raise DistillError(f"--teacher {teacher_path} is not a {named} checkpoint ("
                               + ", ".join(f"{k} {a} vs {b}" for k, (a, b) in diff.items())
                               + "); set distill.teacher_recipe=none to accept any teacher geometry")
    recipe = copy.deepcopy(student)
    recipe.name = saved.name
    recipe.model = copy.deepcopy(saved.model)
    return recipe


def frozen_copy_on_last_stage(path: str, recipe: Recipe):
    """A frozen, eval-mode model of checkpoint ``path`` for the pipeline-last ranks (``None`` elsewhere).

    Built whole (all layers; PP=1 through a one-rank pipeline group per rank) at the training
    run's tensor-parallel size and precision, with no gradients and no optimizer state. Every
    pipeline stage takes part in the collective load (the shards overlap across stages by design)
    and the non-last stages drop it. Used for the distillation teacher and the DPO reference.
    """
    from megatron.core import parallel_state as ps
    from megatron.core.process_groups_config import ProcessGroupCollection
    from megatron.core.transformer.module import Float16Module

    from megatron_ext.loading import load_model

    pg = ProcessGroupCollection.use_mpu_process_groups()
    if ps.get_pipeline_model_parallel_world_size() > 1:
        # One single-rank pipeline group per rank (created collectively, in the same order on all ranks).
        world = torch.distributed.get_world_size()
        singles = [torch.distributed.new_group([r]) for r in range(world)]
        pg.pp = singles[torch.distributed.get_rank()]
    model, built = load_model(path, recipe=recipe, use_te=None, pg_collection=pg, overlapping=True,
                              fused_kernels=torch.cuda.is_available())
    if built.precision.dtype in ("bf16", "fp16"):
        model = Float16Module(model.config, model).eval()
    return model if ps.is_pipeline_last_stage() else None


def build_teacher(student: Recipe, teacher_path: str):
    """The frozen teacher laid out like ``student`` (see :func:`frozen_copy_on_last_stage`)."""
    return frozen_copy_on_last_stage(teacher_path, teacher_recipe(student, teacher_path))


class Distiller(Trainer):
    """``Trainer`` with a frozen teacher: KD loss in training, plain LM loss in evaluation."""

    def __init__(self, recipe: Recipe, teacher: str, resume: str = "auto"):
        from megatron_ext.tokenizer_check import check_data_against_checkpoint

        # before any process group: a teacher of another tokenizer would teach garbage logits
        check_data_against_checkpoint(recipe, teacher, role="teacher")
        super().__init__(recipe, resume)
        self.teacher_path = teacher
        self.teacher = build_teacher(recipe, teacher)
        self._last_losses: list[dict] = []
        self._print(f"teacher {teacher} ({recipe.distill.temperature=}, {recipe.distill.kd_weight=}, "
                    f"{recipe.distill.lm_loss_weight=})")

    def forward_step(self, data_iterator, model):
        if not model.training or not self.is_last_chunk(model):
            return super().forward_step(data_iterator, model)
        batch = self.get_batch(data_iterator)
        tokens, labels, loss_mask, positions = (batch[k] for k in ("tokens", "labels", "loss_mask", "position_ids"))
        with torch.no_grad():
            teacher_logits = self.teacher(tokens, positions, attention_mask=None)
        logits = model(tokens, positions, attention_mask=None)  # labels omitted: [b, s, vocab/TP]
        return logits, partial(distill_loss, loss_mask, labels, teacher_logits, self.recipe.distill)

    def _run_batches(self, stream, num_microbatches: int, forward_only: bool):
        self._last_losses = super()._run_batches(stream, num_microbatches, forward_only)
        return self._last_losses

    def train_step(self, stream) -> dict:
        out = super().train_step(stream)
        out["kd_loss"] = self._reduce_loss(self._last_losses, "kd loss")
        return out
