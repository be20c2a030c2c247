"""``midm recipe show NAME [--set k=v]`` — the resolved recipe as JSON, with sizes and FLOPs."""
from __future__ import annotations

import argparse
import json

from recipes.args import add_set_arg
from recipes import flops_per_token, get_recipe, num_parameters, recipe_names, recipe_to_dict, validate


def describe(name: str, overrides: list[str]) -> dict:
    recipe = get_recipe(name, overrides)
    validate(recipe)
    out = recipe_to_dict(recipe)
    out["num_parameters"] = num_parameters(recipe.model)
    out["flops_per_token"] = flops_per_token(recipe.model, recipe.data.seq_length)
    out["tokens_per_step"] = recipe.train.global_batch_size * recipe.data.seq_length
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="midm recipe", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print the resolved recipe as JSON")
    show.add_argument("name", help=f"one of: {', '.join(recipe_names())}")
    add_set_arg(show)
    sub.add_parser("list", help="list recipe names")
    args = parser.parse_args(argv)
    if args.command == "list":
        print("\n".join(recipe_names()))
        return 0
    print(json.dumps(describe(args.name, args.overrides), indent=2))
    return 0
