"""The distillation step for ``midm distill``: vocab-parallel forward KL and the ``Distiller`` trainer.

Kept apart from the CLI module (``distill.py``) so ``midm distill --help`` does not import torch.
See ``distill.py`` for the method and the teacher's placement under TP/PP.
"""
from __future__ import annotations

import copy
import warnings
from functools import partial

import torch

from megatron_ext.loop import Trainer
from recipes import Recipe


class DistillError(RuntimeError):
    pass


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
    """The teacher laid out like the student (TP, precision), with the checkpoint's geometry."""
    from megatron_ext import checkpoint as ckpt
    from recipes import get_recipe

    saved = ckpt.read_recipe(teacher_path)
    if saved.model.vocab_size != student.model.vocab_size:
        raise DistillError(f"teacher vocabulary {saved.model.vocab_size} != student {student.model.vocab_size}: "
                           "logit distillation needs the same tokenizer")
    named = student.distill.teacher_recipe
    if named:
        expected = get_recipe(named).model
        keys = ("num_layers", "hidden_size", "ffn_hidden_size", "num_attention_heads", "num_query_groups")
        diff = [f"{k} {getattr(saved.model, k)} vs {getattr(expected, k)}" for k in keys
                if getattr(saved.model, k) != getattr(expected, k)]
        if diff:
            raise DistillError(f"--teacher {teacher_path} is not a {named} checkpoint ({', '.join(diff)}); set "
                               "distill.teacher_recipe=none to accept any teacher geometry")
    recipe = copy.deepcopy(student)
    recipe.name = saved.name
    recipe.model = copy.deepcopy(saved.model)
    return recipe


def build_teacher(student: Recipe, teacher_path: str):
    """A frozen, eval-mode teacher: whole (PP=1) on pipeline-last ranks, ``None`` elsewhere."""
    from megatron.core import dist_checkpointing
    from megatron.core import parallel_state as ps
    from megatron.core.models.gpt import GPTModel
    from megatron.core.process_groups_config import ProcessGroupCollection
    from megatron.core.transformer.module import Float16Module

    from megatron_ext import checkpoint as ckpt
    from megatron_ext.model import layer_spec, transformer_config

    recipe = teacher_recipe(student, teacher_path)
    config = transformer_config(recipe=recipe, pipeline_model_parallel_size=1)
    pg = ProcessGroupCollection.use_mpu_process_groups()
    if ps.get_pipeline_model_parallel_world_size() > 1:
        # One single-rank pipeline group per rank (created collectively, in the same order on all ranks).
        world = torch.distributed.get_world_size()
        singles = [torch.distributed.new_group([r]) for r in range(world)]
        pg.pp = singles[torch.distributed.get_rank()]
    m = recipe.model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        teacher = GPTModel(config=config, transformer_layer_spec=layer_spec(), vocab_size=m.vocab_size,
                           max_sequence_length=m.max_position_embeddings, pre_process=True, post_process=True,
                           share_embeddings_and_output_weights=m.tie_embeddings, position_embedding_type="rope",
                           rotary_base=int(m.rotary_base), pg_collection=pg)
    if torch.cuda.is_available():
        teacher.cuda(torch.cuda.current_device())
    # Every pipeline stage loads the whole teacher: the shards overlap across stages by design.
    state = dist_checkpointing.load({"model": teacher.sharded_state_dict()}, str(ckpt.check(teacher_path)),
                                    validate_access_integrity=False)
    teacher.load_state_dict(state["model"], strict=True)
    for param in teacher.parameters():
        param.requires_grad_(False)
    if config.bf16 or config.fp16:
        teacher = Float16Module(config, teacher)
    teacher.eval()
    return teacher if ps.is_pipeline_last_stage() else None


class Distiller(Trainer):
    """``Trainer`` with a frozen teacher: KD loss in training, plain LM loss in evaluation."""

    def __init__(self, recipe: Recipe, teacher: str, resume: str = "auto"):
        super().__init__(recipe, resume)
        self.teacher_path = teacher
        self.teacher = build_teacher(recipe, teacher)
        self._last_losses: list[dict] = []
        self._print(f"teacher {teacher} ({recipe.distill.temperature=}, {recipe.distill.kd_weight=}, "
                    f"{recipe.distill.lm_loss_weight=})")

    def forward_step(self, data_iterator, model):
        if not model.training or not self.ps.is_pipeline_last_stage():
            return super().forward_step(data_iterator, model)
        batch = next(data_iterator)
        dev = torch.cuda.current_device() if torch.cuda.is_available() else "cpu"
        tokens, labels, loss_mask, positions = (batch[k].to(dev, non_blocking=True)
                                                for k in ("tokens", "labels", "loss_mask", "position_ids"))
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
