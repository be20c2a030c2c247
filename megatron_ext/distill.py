"""``midm distill --recipe NAME --teacher CKPT --student CKPT`` — logit distillation (Minitron).

The student trains exactly like ``midm train`` (same recipe, data pipeline, schedules, checkpoints,
signals and resume; ``Distiller`` subclasses ``loop.Trainer`` and swaps only ``forward_step``) while
a frozen teacher sits in the loop. Loss per token:

    kd_weight · T² · KL(softmax(z_teacher / T) ‖ softmax(z_student / T))  +  lm_weight · CE(z_student, y)

(``distill.temperature``, ``distill.kd_weight``, ``distill.lm_loss_weight``; Minitron's default is
forward KL at T = 1 with the LM loss off). Both the KL and the cross-entropy are computed on the
tensor-parallel vocabulary shards with all-reduces of the max / partition function, so logits are
never gathered. ``lm loss`` (student cross-entropy) is always logged, and validation uses it, so
curves compare directly with plain training; ``kd_loss`` is logged as well.

The teacher's geometry comes from its checkpoint (width and depth may differ from the student's;
the vocabulary must match). It is built with the student's tensor-parallel size and precision,
holds no gradients and no optimizer state, and runs in eval mode under ``no_grad``. Under pipeline
parallelism only the last stage needs teacher logits, so there the teacher is built whole (all
layers, TP-sharded, with a one-rank pipeline group) and other stages drop it after the collective
load. ``--student`` is the initial weights (``checkpoint.load``: a ``midm prune`` output); a
resumed run continues from ``checkpoint.dir`` as usual.
"""
from __future__ import annotations

import argparse
import copy
import sys
import warnings
from functools import partial

import torch

from megatron_ext.loop import Trainer, lm_loss
from recipes import Recipe

EXIT_REQUEUE = 75


class DistillError(RuntimeError):
    pass


# ---------------------------------------------------------------- vocab-parallel math
def tp_log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """log-softmax over a vocabulary split across the tensor-parallel group (last dim = local shard)."""
    from megatron.core import parallel_state as ps
    from megatron.core.tensor_parallel import reduce_from_tensor_model_parallel_region

    with torch.no_grad():
        peak = logits.max(dim=-1, keepdim=True).values
        if ps.get_tensor_model_parallel_world_size() > 1:
            torch.distributed.all_reduce(peak, op=torch.distributed.ReduceOp.MAX,
                                         group=ps.get_tensor_model_parallel_group())
    shifted = logits - peak
    partition = reduce_from_tensor_model_parallel_region(shifted.exp().sum(dim=-1, keepdim=True))
    return shifted - partition.log()


def tp_pick(values: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``values[..., labels]`` for a vocabulary-sharded last dim (summed over the TP group)."""
    from megatron.core import parallel_state as ps
    from megatron.core.tensor_parallel import reduce_from_tensor_model_parallel_region

    local = values.shape[-1]
    start = ps.get_tensor_model_parallel_rank() * local
    index = labels - start
    inside = (index >= 0) & (index < local)
    picked = values.gather(-1, index.clamp(0, local - 1).unsqueeze(-1)).squeeze(-1) * inside
    return reduce_from_tensor_model_parallel_region(picked)


def kd_token_losses(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                    temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(forward KL · T², cross-entropy) per token, both ``[b, s]``, from vocab-sharded logits."""
    from megatron.core.tensor_parallel import reduce_from_tensor_model_parallel_region

    student = student_logits.float()
    with torch.no_grad():
        t_logp = tp_log_softmax(teacher_logits.float() / temperature)
    s_logp_t = tp_log_softmax(student / temperature)
    kl = reduce_from_tensor_model_parallel_region((t_logp.exp() * (t_logp - s_logp_t)).sum(dim=-1))
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
    from megatron.core.process_groups_config import ProcessGroupCollection
    from megatron.core.transformer.module import Float16Module

    from megatron.core.models.gpt import GPTModel

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
    state = dist_checkpointing.load({"model": teacher.sharded_state_dict()}, str(ckpt.resolve(teacher_path)),
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="midm distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", required=True, help="student recipe (e.g. midm_mini, tiny_mini)")
    parser.add_argument("--teacher", required=True, help="frozen teacher checkpoint (root or iter_* dir)")
    parser.add_argument("--student", help="initial student weights (e.g. `midm prune` output); sets "
                                          "checkpoint.load. Omit to start from random init")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe field, e.g. --set distill.temperature=2 (repeatable)")
    parser.add_argument("--resume", default="auto", help="auto | none | PATH (as midm train)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from recipes import RecipeError, get_recipe

    try:
        recipe = get_recipe(args.recipe, args.overrides)
    except RecipeError as err:
        print(f"midm distill: {err}", file=sys.stderr)
        return 2
    if args.student:
        recipe.checkpoint.load = args.student
    from megatron_ext import checkpoint as ckpt
    from megatron_ext.data import DataError

    try:
        teacher_recipe(recipe, args.teacher)
        trainer = Distiller(recipe, args.teacher, resume=args.resume)
    except (RecipeError, DataError, DistillError, ckpt.CheckpointError) as err:
        print(f"midm distill: {err}", file=sys.stderr)
        return 2
    finished = trainer.run()
    trainer.close()
    return 0 if finished else EXIT_REQUEUE


if __name__ == "__main__":
    sys.exit(main())
