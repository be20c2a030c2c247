"""``midm prune`` — Minitron-style structured pruning of a checkpoint (arXiv 2407.14679 / 2408.11796).

    midm prune --checkpoint BASE --output MINI --recipe midm_mini --calib PREFIX --samples 1024
    midm prune --checkpoint IN --output OUT --hidden 64 --ffn 192 [--heads A --kv-groups G] [--layers L]
               --calib PREFIX [--samples N] [--tie-embeddings] [--fold auto|embedding|output|mean]

Importance comes from forward activations on calibration windows (``importance.py``: MLP neurons,
attention heads / query groups, embedding channels from the RMSNorm outputs, depth by block
importance); the top-k on each axis are kept and every affected weight is sliced consistently
(``prune_slice.py``). ``kv_channels`` is kept when the hidden size shrinks (Mini: hidden 1792 with
32 heads × 128, so q projects 1792 → 4096). Pruning never runs without calibration data: importance
cannot be guessed.

Tied embeddings (Mini) from an untied teacher: the student has one matrix for the input embedding
and the output layer. ``--fold`` picks it from the teacher's (sliced) input embedding, its output
layer, or their mean; ``auto`` (default) measures the pruned student's LM loss on the calibration
windows with each candidate and keeps the best — all three are reported in ``prune_summary.json``.

Output: ``OUT/iter_0000000`` (+ ``latest``) with the student's ``recipe.json``, ``prune_summary.json``
(targets, losses before/after, the ``--set`` overrides the target recipe needs, the next command)
and ``kept_indices.json``. Host memory: the source and the student in the source checkpoint's dtype
(no random initialisation, no fp32 copy), the calibration activations, and torch (≈ 0.7 GiB);
saving adds no copy: ≈ 28 GiB for ``midm_base`` → Mini width in bf16 (measured on smaller models,
``benchmarks/checkpoint_memory.py``). The logic lives in ``pruner.py``.
"""
from __future__ import annotations

import argparse
import sys

from megatron_ext.commands.common import add_calibration_args, run_logic
from recipes.args import add_set_arg

FOLD_CHOICES = ("auto", "embedding", "output", "mean")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="midm prune", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="teacher checkpoint root or iter_* directory")
    parser.add_argument("--output", required=True, help="new checkpoint root (must not hold a checkpoint)")
    parser.add_argument("--recipe", help="target recipe: its geometry is the default target and it is written as "
                                         "the output's recipe.json (e.g. midm_mini, tiny_mini)")
    add_set_arg(parser, "override a field of --recipe (e.g. model.vocab_size=384)")
    parser.add_argument("--hidden", type=int, help="target hidden size (embedding channels)")
    parser.add_argument("--ffn", type=int, help="target FFN hidden size (MLP neurons per layer)")
    parser.add_argument("--heads", type=int, help="target attention heads per layer")
    parser.add_argument("--kv-groups", type=int, help="target query groups (GQA) per layer")
    parser.add_argument("--layers", type=int, help="target depth (drops the least important blocks)")
    parser.add_argument("--tie-embeddings", action=argparse.BooleanOptionalAction, default=None,
                        help="tie input embedding and output layer in the student (default: from --recipe, else "
                             "the source's)")
    parser.add_argument("--fold", choices=FOLD_CHOICES, default="auto",
                        help="how an untied teacher's output layer becomes a tied student's matrix")
    add_calibration_args(parser, calib_help="calibration data prefix (Megatron .bin/.idx without extension); required",
                         samples=1024, samples_help="calibration windows (default 1024, as Minitron)")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_logic(build_parser(), "megatron_ext.pruner:run", argv)


if __name__ == "__main__":
    sys.exit(main())
