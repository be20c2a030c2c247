"""``midm dpo --recipe NAME --reference CKPT [--data DIR] [--set KEY=VALUE …] [--resume …]``: preference tuning.

Direct Preference Optimization (Rafailov et al., arXiv 2305.18290) in the same Trainer as
``midm train``: same recipes, checkpoints, resume (``kill -9`` → identical losses), signals (exit 75
after SIGUSR1/SIGTERM), TP/PP layouts and logging. The policy starts from ``checkpoint.load``
(default: the reference, i.e. the SFT model); the reference ``CKPT`` is frozen — built like
``midm distill``'s teacher, no gradients, no optimizer state, never saved.

Data: ``--data DIR`` (sets ``dpo.dataset``) is a ``midm data prefs`` output; its ``valid`` split is
the validation set and ``data.seq_length`` is the one the pairs were built for. One sample is a pair,
so ``train.global_batch_size`` and ``train.micro_batch_size`` count pairs; chosen and rejected always
share a micro-batch. ``dpo.epochs`` / ``dpo.warmup_fraction`` derive ``train.steps`` and the warmup.
The policy adopts the model geometry of its initial checkpoint.

Logged per step (``metrics.jsonl``, TensorBoard): ``loss`` (the objective), ``dpo_loss``,
``reward_accuracy``, ``chosen_reward``, ``rejected_reward``, ``margin`` (β-scaled log-ratios) and
``sft_loss`` (token-mean NLL of the chosen responses); the same with ``val_`` on validation.
The method and its parallel layout: ``megatron_ext/dpo.py``.

Exit status: 0 finished; 2 invalid recipe/data/checkpoint; 75 checkpointed after a signal or after
``train.exit_after_steps`` steps of this invocation (run the same command again to continue).
"""
from __future__ import annotations

import sys


def build_parser():
    from megatron_ext.commands.train import build_parser as trainer_parser

    parser = trainer_parser("midm dpo", __doc__)
    parser.add_argument("--data", help="`midm data prefs` output directory (sets dpo.dataset)")
    parser.add_argument("--reference", required=True,
                        help="frozen reference checkpoint (root or iter_* dir), normally the SFT model; also the "
                             "policy's initial weights unless checkpoint.load is set")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from recipes import RecipeError, get_recipe

    recipe = get_recipe(args.recipe, args.overrides)
    if recipe.dpo is None:
        raise RecipeError(f"recipe {args.recipe!r} has no dpo section; use a *_dpo recipe (midm recipe list)")
    if args.data:
        recipe.dpo.dataset = args.data
    if not recipe.checkpoint.load:
        recipe.checkpoint.load = args.reference
    from megatron_ext.commands.train import run_trainer
    from megatron_ext.dpo import DPOTrainer

    # a wrong reference or dataset fails inside DPOTrainer before any process group starts
    return run_trainer(lambda: DPOTrainer(recipe, args.reference, resume=args.resume))


if __name__ == "__main__":
    sys.exit(main())
