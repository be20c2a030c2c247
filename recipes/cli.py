"""``midm recipe show|list|plan`` — resolved recipes as JSON, and a memory/throughput plan on N GPUs.

``midm recipe plan NAME --gpus N [--gpu h100-80gb|h200-141gb] [--set …] [--json] [--search]`` prints the
per-GPU memory of the recipe's layout term by term, the largest micro-batch that fits and the expected
step time and tokens/s at ``--mfu``; ``--search`` ranks TP/PP/VPP/CP/recompute layouts that fit. Transformer
Engine layers are assumed unless ``--set perf.transformer_impl=local``. Torch-free
(see recipes/memory.py and recipes/plan.py for the formulas and their sources).
"""
from __future__ import annotations

import argparse
import json

from recipes import flops_per_token, get_recipe, num_parameters, recipe_names, recipe_to_dict, validate
from recipes.args import add_set_arg


def describe(name: str, overrides: list[str]) -> dict:
    recipe = get_recipe(name, overrides)
    validate(recipe)
    out = recipe_to_dict(recipe)
    out["num_parameters"] = num_parameters(recipe.model)
    out["flops_per_token"] = flops_per_token(recipe.model, recipe.data.seq_length)
    out["tokens_per_step"] = recipe.train.global_batch_size * recipe.data.seq_length
    return out


def build_parser() -> argparse.ArgumentParser:
    """``midm recipe show|list|plan`` (torch-free)."""
    parser = argparse.ArgumentParser(prog="midm recipe", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print the resolved recipe as JSON",
                          description="Print the recipe with every --set applied and validated, as JSON, with "
                                      "num_parameters, flops_per_token and tokens_per_step.")
    show.add_argument("name", help=f"one of: {', '.join(recipe_names())}")
    add_set_arg(show)
    sub.add_parser("list", help="list recipe names", description="List the registered recipe names, one a line.")
    plan = sub.add_parser("plan", help="memory per GPU and expected throughput on N GPUs (torch-free)",
                          description="Per-GPU memory of the recipe's layout term by term, the largest "
                                      "micro-batch that fits, and the expected step time and tokens/s at --mfu; "
                                      "--search ranks the TP/PP/VPP/CP/recompute layouts that fit.")
    plan.add_argument("name", help=f"one of: {', '.join(recipe_names())}")
    plan.add_argument("--gpus", type=int, required=True, help="number of GPUs (world size)")
    plan.add_argument("--gpu", default="h100-80gb", help="h100-80gb (default) or h200-141gb")
    add_set_arg(plan, "override a field, e.g. --set parallel.context_parallel_size=2 (repeatable)")
    plan.add_argument("--mfu", type=float, default=0.5,
                      help="fraction of the dense bf16 peak (989 TFLOP/s) sustained while computing (default 0.5)")
    plan.add_argument("--teacher", default="auto",
                      help="plan `midm distill` with this frozen teacher recipe beside the student; auto (default): "
                           "the recipe's distill.teacher_recipe (midm_mini: midm_base); none: plain `midm train`")
    plan.add_argument("--search", action="store_true", help="rank TP/PP/VPP/CP/recompute layouts that fit")
    plan.add_argument("--top", type=int, default=10, help="layouts to list with --search (default 10)")
    plan.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        print("\n".join(recipe_names()))
        return 0
    if args.command == "plan":
        return _plan(args)
    print(json.dumps(describe(args.name, args.overrides), indent=2))
    return 0


def _plan(args: argparse.Namespace) -> int:
    from recipes import plan as planner
    from recipes.plan_format import format_plan, format_search

    recipe = get_recipe(args.name, args.overrides)
    if args.search:
        plans = planner.search(recipe, args.gpus, args.gpu, args.mfu, top=args.top, teacher=args.teacher)
        if args.json:
            print(json.dumps([p.to_dict() for p in plans], indent=2))
        else:
            print(f"{recipe.name} on {args.gpus} × {args.gpu}, {args.mfu:.0%} MFU while computing, best first:")
            print(format_search(plans))
            if plans:
                print("\nbest:\n" + format_plan(plans[0]))
        return 0 if plans else 1
    result = planner.estimate(recipe, args.gpus, args.gpu, args.mfu, teacher=args.teacher)
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_plan(result))
    return 0
