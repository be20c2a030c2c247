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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from recipes import RecipeError, get_recipe

    try:
        recipe = get_recipe(args.recipe, args.overrides)
    except RecipeError as err:
        print(f"midm train: {err}", file=sys.stderr)
        return 2
    from megatron_ext.data import DataError
    from megatron_ext.loop import Trainer

    try:
        trainer = Trainer(recipe, resume=args.resume)
    except (RecipeError, DataError) as err:
        print(f"midm train: {err}", file=sys.stderr)
        return 2
    finished = trainer.run()
    trainer.close()
    return 0 if finished else EXIT_REQUEUE


if __name__ == "__main__":
    sys.exit(main())
