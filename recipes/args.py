"""The ``--recipe NAME`` / ``--set KEY=VALUE`` pair every recipe-driven command takes (one definition)."""
from __future__ import annotations

import argparse


def add_recipe_args(parser: argparse.ArgumentParser, *, required: bool = True,
                    recipe_help: str = "recipe name (midm recipe list)",
                    set_help: str = "override a recipe field, e.g. --set train.steps=100 (repeatable)") -> None:
    """Add ``--recipe`` (``args.recipe``) and repeatable ``--set KEY=VALUE`` (``args.overrides``) to ``parser``."""
    parser.add_argument("--recipe", required=required, help=recipe_help)
    add_set_arg(parser, set_help)


def add_set_arg(parser: argparse.ArgumentParser,
                help: str = "override a recipe field, e.g. --set train.steps=100 (repeatable)") -> None:
    """Add only the repeatable ``--set KEY=VALUE`` (``args.overrides``), for commands whose recipe is positional."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help)
