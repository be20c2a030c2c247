"""``midm eval`` — run benchmarks on an HF model directory, list them, render the paper tables.

    midm eval --model HF_DIR --tasks klue_nli_mc,kornli_mc [--data-dir DIR] [--output FILE]
    midm eval list
    midm eval table RESULTS.json… [--output FILE.md|FILE.html]

Imports stay light here; lm-eval/torch are imported only when a run starts.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evaluation import registry

SUBCOMMANDS = ("table", "list")


def _run_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="midm eval",
        description="Run benchmarks with lm-evaluation-harness (HF backend) on a Hugging Face model directory. "
                    "Other forms: `midm eval list` (benchmarks, shots, metrics) and "
                    "`midm eval table RESULTS…` (model card tables).")
    p.add_argument("--model", required=True, type=Path, help="Hugging Face model directory (config.json + safetensors)")
    p.add_argument("--tasks", required=True,
                   help="comma-separated benchmark names from `midm eval list` (e.g. klue_nli_mc,kornli_mc)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="offline: read each Hub dataset from DIR/<hub id> (a Hub snapshot or the same layout) "
                        "and never contact the Hub")
    p.add_argument("--output", type=Path, default=Path("eval_results.json"),
                   help="summary JSON (default: eval_results.json); lm-eval's raw results go to <stem>.lm_eval.json")
    p.add_argument("--limit", type=float, default=None, help="only the first N examples per task (or a fraction <1)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--dtype", default="auto", help="model dtype for lm-eval's HF backend (auto, float32, bfloat16)")
    p.add_argument("--bootstrap-iters", type=int, default=100000, help="lm-eval bootstrap iterations for stderrs")
    p.add_argument("--apply-chat-template", action="store_true", help="format prompts with the tokenizer's chat template")
    p.add_argument("--allow-code-execution", action="store_true", help="allow tasks that execute generated code (MBPP+)")
    p.add_argument("--seed", type=int, default=0)
    return p


def _table_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="midm eval table",
        description="Render the Mi:dm 2.0 model card's three tables (Korean part 1 and 2, English) with our "
                    "results beside the published numbers. KT-proprietary benchmarks are marked not reproducible.")
    p.add_argument("results", nargs="+", type=Path, help="summary JSON files written by `midm eval --output`")
    p.add_argument("--output", type=Path, default=None,
                   help="write here (.md or .html; any other suffix writes both FILE.md and FILE.html); "
                        "default: markdown on stdout")
    p.add_argument("--format", choices=("md", "html"), default=None, help="force the format (default: from --output)")
    p.add_argument("--label", action="append", default=None,
                   help="row label for each results file, in order (default: the model directory name)")
    return p


def _list_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="midm eval list", description="List benchmarks with shots, metric and data.")


def cmd_run(argv: list[str]) -> int:
    args = _run_parser().parse_args(argv)
    from evaluation import runner

    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    try:
        benchmarks = registry.resolve(names)
        device = args.device or _default_device()
        summary = runner.run(args.model, benchmarks, data_dir=args.data_dir, output=args.output, limit=args.limit,
                             batch_size=args.batch_size, device=device, dtype=args.dtype,
                             bootstrap_iters=args.bootstrap_iters, apply_chat_template=args.apply_chat_template,
                             allow_code_execution=args.allow_code_execution, seed=args.seed)
    except (ValueError, runner.EvalError) as err:
        print(f"midm eval: error: {err}", file=sys.stderr)
        return 2
    for name, res in summary.get("benchmarks", {}).items():
        print(f"{name:<22} {res['score']:>8.2f}  ({res['metric']}, {res['num_fewshot']}-shot, n={res['n_samples']})")
    print(f"summary: {args.output}")
    return 0


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cmd_list(argv: list[str]) -> int:
    _list_parser().parse_args(argv)
    print(f"{'name':<22} {'card column':<14} {'shots':>5}  {'metric':<32} lm-eval tasks / note")
    for b in registry.BENCHMARKS.values():
        tasks = ",".join(b.lm_eval_tasks) or "(LLM judge: not runnable here)"
        print(f"{b.name:<22} {b.title:<14} {b.num_fewshot:>5}  {b.results_key:<32} {tasks}")
    return 0


def cmd_table(argv: list[str]) -> int:
    args = _table_parser().parse_args(argv)
    from evaluation import tables

    try:
        ours = tables.load_results(args.results, args.label)
    except (OSError, ValueError) as err:
        print(f"midm eval table: error: {err}", file=sys.stderr)
        return 2
    fmt = args.format or {".md": "md", ".html": "html"}.get(args.output.suffix if args.output else ".md")
    if args.output is None:
        print(tables.render(ours, fmt or "md"))
        return 0
    targets = [(args.output, fmt)] if fmt else [(args.output.with_suffix(".md"), "md"),
                                                 (args.output.with_suffix(".html"), "html")]
    for path, kind in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tables.render(ours, kind), encoding="utf-8")
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "table":
        return cmd_table(argv[1:])
    if argv and argv[0] == "list":
        return cmd_list(argv[1:])
    return cmd_run(argv)


if __name__ == "__main__":
    sys.exit(main())
