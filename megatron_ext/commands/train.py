"""``midm train --recipe NAME [--set KEY=VALUE …] [--resume auto|none|PATH]``.

The same entry point runs plain on a laptop, under ``torchrun`` (gloo on CPU, NCCL on GPUs) and
one task per GPU under ``srun``. It is assembled from Megatron-Core's pieces: GPTModel, Megatron
DDP, ``get_megatron_optimizer`` (distributed optimizer on GPUs), ``OptimizerParamScheduler``,
``get_forward_backward_func`` pipeline schedules and ``dist_checkpointing`` — see ``trainer.py``
for the step itself.

Exit status: 0 finished; 2 invalid recipe/data/checkpoint; 75 checkpointed after SIGUSR1/SIGTERM or
``train.exit_after_steps`` and not finished (the Slurm script requeues on 75).
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Callable

from recipes.args import add_recipe_args

if TYPE_CHECKING:
    from megatron_ext.trainer import Trainer

EXIT_REQUEUE = 75


def build_parser(prog: str = "midm train", doc: str | None = None) -> argparse.ArgumentParser:
    """The parser every Trainer-based stage starts from: ``--recipe``, ``--set``, ``--resume``."""
    parser = argparse.ArgumentParser(prog=prog, description=doc or __doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_recipe_args(parser)
    parser.add_argument("--resume", default="auto",
                        help="auto: continue from <checkpoint.dir>/latest when present (default); none: start "
                             "fresh (refused in a run directory that holds an earlier run); PATH: resume from that "
                             "checkpoint. A resume whose recipe differs from the checkpoint's prints the differences "
                             "and refuses a changed LR schedule or data unless checkpoint.override_scheduler / "
                             "checkpoint.allow_data_change is set")
    return parser


def run_trainer(build: Callable[[], "Trainer"]) -> int:
    """Build a trainer, run it, and map the outcome to an exit status (0 done; 75 stopped early, checkpointed:
    a stop signal or ``train.exit_after_steps``).

    Bad recipes, data or checkpoints raise ``MidmError`` from ``build`` before any step runs; the
    CLI reports them (exit 2).
    """
    trainer = build()
    try:
        finished = trainer.run()  # may raise MidmError, e.g. a checkpoint that does not fit on the disk
    finally:
        trainer.close()
    return 0 if finished else EXIT_REQUEUE


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from recipes import get_recipe

    recipe = get_recipe(args.recipe, args.overrides)
    from megatron_ext.trainer import Trainer

    return run_trainer(lambda: Trainer(recipe, resume=args.resume))


if __name__ == "__main__":
    sys.exit(main())
