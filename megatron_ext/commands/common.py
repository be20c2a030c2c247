"""Argument groups and the dispatch shared by the checkpoint-surgery commands (``dus``, ``prune``)."""
from __future__ import annotations

import argparse
import importlib


def add_calibration_args(parser: argparse.ArgumentParser, *, calib_help: str, samples: int, samples_help: str) -> None:
    """``--calib PREFIX --samples N --seq-length S --micro-batch-size B [--allow-tokenizer-mismatch]`` (calibration
    windows of a Megatron prefix, made with the checkpoint's tokenizer: ``tokenizer_check.check_calibration``)."""
    parser.add_argument("--calib", help=calib_help)
    parser.add_argument("--samples", type=int, default=samples, help=samples_help)
    parser.add_argument("--seq-length", type=int, help="calibration window length in tokens (default: the recipe's "
                                                       "data.seq_length)")
    parser.add_argument("--micro-batch-size", type=int, default=4,
                        help="calibration windows per forward pass (default 4)")
    parser.add_argument("--allow-tokenizer-mismatch", action="store_true",
                        help="calibrate on --calib data although its tokenizer fingerprint is not the one the "
                             "checkpoint records (refused by default: the ids would mean other pieces)")


def run_logic(parser: argparse.ArgumentParser, target: str, argv: list[str] | None) -> int:
    """Parse ``argv`` and call ``target`` ("module:function", imported only now) with the namespace.

    An ``--output`` that already holds a checkpoint is refused first, before torch is imported or any
    weight read (the save refuses it again, ``state_io.save_output``).

    Raises:
        OutputExistsError: ``--output`` already holds a checkpoint, or is a file.
    """
    args = parser.parse_args(argv)
    from megatron_ext import checkpoint_output

    checkpoint_output.check(args.output, overwrite=None)
    module, func = target.split(":")
    getattr(importlib.import_module(module), func)(args)
    return 0
