"""``midm train --recipe NAME [--set k=v …] [--resume auto|none|PATH]``.

The same entry point runs plain on a laptop, under ``torchrun`` (gloo on CPU, NCCL on GPUs) and
one task per GPU under ``srun``. It is assembled from Megatron-Core's pieces: GPTModel, Megatron
DDP, ``get_megatron_optimizer`` (distributed optimizer on GPUs), ``OptimizerParamScheduler``,
``get_forward_backward_func`` pipeline schedules and ``dist_checkpointing`` — see ``loop.py`` for
the step itself.

Exit status: 0 finished; 2 invalid recipe/data; 75 checkpointed after SIGUSR1/SIGTERM and not
finished (the Slurm script requeues on 75).
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from megatron_ext.loop import Trainer

EXIT_REQUEUE = 75


def build_parser(prog: str = "midm train") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", required=True, help="recipe name (midm recipe list)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe field, e.g. --set train.steps=100 (repeatable)")
    parser.add_argument("--resume", default="auto",
                        help="auto: continue from <checkpoint.dir>/latest when present (default); none: start "
                             "fresh; PATH: resume from that checkpoint")
    return parser


def run_trainer(prog: str, build: Callable[[], "Trainer"], errors: tuple[type[Exception], ...] = ()) -> int:
    """Build a trainer (bad recipe/data/checkpoint → exit 2 with the message), run it, map to an exit status."""
    from megatron_ext.checkpoint import CheckpointError
    from megatron_ext.data import DataError
    from midm.errors import MidmError
    from recipes import RecipeError

    try:
        trainer = build()
    except (RecipeError, DataError, CheckpointError, MidmError, *errors) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 2)
    try:
        finished = trainer.run()
    except MidmError as err:  # e.g. a checkpoint that does not fit on the disk
        print(f"{prog}: {err}", file=sys.stderr)
        trainer.close()
        return err.exit_code
    trainer.close()
    return 0 if finished else EXIT_REQUEUE


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from recipes import RecipeError, get_recipe

    try:
        recipe = get_recipe(args.recipe, args.overrides)
    except RecipeError as err:
        print(f"midm train: {err}", file=sys.stderr)
        return 2
    from megatron_ext.loop import Trainer

    return run_trainer("midm train", lambda: Trainer(recipe, resume=args.resume))


if __name__ == "__main__":
    sys.exit(main())
