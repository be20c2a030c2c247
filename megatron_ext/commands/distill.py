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
import sys


def build_parser() -> argparse.ArgumentParser:
    from megatron_ext.commands.train import build_parser as trainer_parser

    parser = trainer_parser("midm distill", __doc__)
    parser.add_argument("--teacher", required=True, help="frozen teacher checkpoint (root or iter_* dir)")
    parser.add_argument("--student", help="initial student weights (e.g. `midm prune` output); sets "
                                          "checkpoint.load. Omit to start from random init")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from recipes import get_recipe

    recipe = get_recipe(args.recipe, args.overrides)
    if args.student:
        recipe.checkpoint.load = args.student
    from megatron_ext.commands.train import run_trainer
    from megatron_ext.distiller import Distiller, teacher_recipe

    def build() -> Distiller:
        teacher_recipe(recipe, args.teacher)  # a wrong teacher fails before any process group starts
        return Distiller(recipe, args.teacher, resume=args.resume)

    return run_trainer(build)


if __name__ == "__main__":
    sys.exit(main())
