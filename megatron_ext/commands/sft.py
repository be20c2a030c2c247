"""``midm sft --recipe NAME [--data DIR] [--base CKPT] [--set KEY=VALUE …] [--resume auto|none|PATH]``.

Supervised fine-tuning of a base checkpoint on ``midm data sft`` output: the same Trainer as
``midm train`` (checkpoints, ``--resume``, SIGUSR1/SIGTERM → checkpoint → exit 75, metrics,
validation), with packed chat samples, attention kept inside each conversation and the loss on
assistant tokens only (``megatron_ext/sft.py``). ``--data`` sets ``sft.dataset``, ``--base`` sets
``checkpoint.load`` (the run adopts that checkpoint's model geometry). Runs plain on CPU, under
``torchrun`` or one task per GPU under ``srun``.

Exit status: 0 finished; 2 invalid recipe/data/checkpoint; 75 checkpointed after a signal or after
``train.exit_after_steps`` steps of this invocation (run the same command again to continue).
"""
from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from megatron_ext.commands.train import build_parser as trainer_parser

    parser = trainer_parser("midm sft", __doc__)
    parser.add_argument("--data", help="`midm data sft` output directory (sets sft.dataset)")
    parser.add_argument("--base", help="base checkpoint to fine-tune (sets checkpoint.load)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from recipes import get_recipe

    recipe = get_recipe(args.recipe, args.overrides)
    if recipe.sft is None:
        from recipes import RecipeError

        raise RecipeError(f"recipe {args.recipe!r} has no sft section; use an *_sft recipe (midm recipe list)")
    if args.data:
        recipe.sft.dataset = args.data
    if args.base:
        recipe.checkpoint.load = args.base
    from megatron_ext.commands.train import run_trainer
    from megatron_ext.sft import SFTTrainer

    return run_trainer(lambda: SFTTrainer(recipe, resume=args.resume))


if __name__ == "__main__":
    sys.exit(main())
