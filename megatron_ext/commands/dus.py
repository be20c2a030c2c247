"""``midm dus --checkpoint IN --output OUT --map solar:M | 0-23,8-31 | scored:L`` — depth-up scaling.

SOLAR (arXiv 2312.15166): a deeper checkpoint by duplicating layers; the maps and the streaming
copy are described in ``depth_upscale.py``. Continue with a fresh optimizer:
``midm train --recipe midm_base --set checkpoint.load=OUT``.
"""
from __future__ import annotations

import argparse
import sys

from megatron_ext.commands.common import add_calibration_args, run_logic
from recipes.args import add_set_arg


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="midm dus", description=_description(),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="source checkpoint root or iter_* directory")
    parser.add_argument("--output", required=True, help="new checkpoint root (must not hold a checkpoint)")
    parser.add_argument("--map", required=True, help="solar:M | explicit ranges 0-23,8-31 | scored:L")
    parser.add_argument("--recipe", help="target recipe the output is for (its geometry is checked and it is "
                                         "written as the output's recipe.json); default: the source recipe, deeper")
    add_set_arg(parser, "override a field of --recipe (e.g. model.vocab_size=384)")
    add_calibration_args(parser, calib_help="data prefix (.bin/.idx without extension) for scored:L", samples=64,
                         samples_help="calibration windows for scored:L (default 64)")
    return parser


def _description() -> str:
    from megatron_ext import depth_upscale

    return depth_upscale.__doc__


def main(argv: list[str] | None = None) -> int:
    return run_logic(build_parser(), "megatron_ext.depth_upscale:run", argv)


if __name__ == "__main__":
    sys.exit(main())
