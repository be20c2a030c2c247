"""``midm dpo --recipe NAME --reference CKPT [--set k=v …] [--resume …]`` — preference tuning (DPO).

Direct Preference Optimization (Rafailov et al., arXiv 2305.18290) in the same Trainer as
``midm train``: same recipes, checkpoints, resume (``kill -9`` → identical losses), signals (exit 75
after SIGUSR1/SIGTERM), TP/PP layouts and logging. The policy starts from ``checkpoint.load``
(default: the reference, i.e. the SFT model); the reference ``CKPT`` is frozen — built like
``midm distill``'s teacher, no gradients, no optimizer state, never saved.

Data: ``data.blend`` lists ``midm data prefs`` directories (concatenated; ``data.split`` takes the
held-out pairs from the end). One sample is a pair, so ``train.global_batch_size`` and
``train.micro_batch_size`` count pairs; chosen and rejected always share a micro-batch.

Logged per step (``metrics.jsonl``, TensorBoard): ``loss`` (the objective), ``dpo_loss``,
``reward_accuracy``, ``chosen_reward``, ``rejected_reward``, ``margin`` (β-scaled log-ratios) and
``sft_loss`` (token-mean NLL of the chosen responses); the same with ``val_`` on validation.
The method and its parallel layout: ``megatron_ext/dpo.py``.

Exit status: 0 finished; 2 invalid recipe/data/checkpoint; 75 checkpointed after a signal.
"""
from __future__ import annotations

import sys


def build_parser():
    from megatron_ext.commands.train import build_parser as trainer_parser

    parser = trainer_parser("midm dpo", __doc__)
    parser.add_argument("--reference", required=True,
                        help="frozen reference checkpoint (root or iter_* dir), normally the SFT model; also the "
                             "policy's initial weights unless checkpoint.load is set")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from recipes import get_recipe

    recipe = get_recipe(args.recipe, args.overrides)
    if not recipe.checkpoint.load:
        recipe.checkpoint.load = args.reference
    from megatron_ext.commands.train import run_trainer
    from megatron_ext.dpo import DPOTrainer, reference_recipe

    def build() -> DPOTrainer:
        reference_recipe(recipe, args.reference)  # a wrong reference fails before any process group starts
        return DPOTrainer(recipe, args.reference, resume=args.resume)

    return run_trainer(build)


if __name__ == "__main__":
    sys.exit(main())
