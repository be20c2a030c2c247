"""``midm eval`` — run benchmarks on an HF model directory, list them, render the paper tables.

    midm eval --model HF_DIR --tasks klue_nli_mc,kornli_mc [--data-dir DIR] [--output FILE] [--backend hf|vllm]
    midm eval --model HF_DIR --tasks logickor,ko_mtbench --judge URL --judge-model NAME
    midm eval list
    midm eval table RESULTS.json… [--output FILE.md|FILE.html] [--allow-mixed]

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
        usage="midm eval --model HF_DIR --tasks NAMES [options]\n"
              "       midm eval list\n"
              "       midm eval table RESULTS.json … [--output FILE.md|FILE.html] [--allow-mixed]",
        description="Run benchmarks with lm-evaluation-harness (HF or vLLM backend) on a Hugging Face model "
                    "directory; LogicKor and Ko-MTBench are graded by an LLM judge (--judge). "
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
    p.add_argument("--backend", choices=("hf", "vllm"), default="hf",
                   help="lm-eval model: hf (transformers) or vllm (tensor-parallel over all visible GPUs; "
                        "needs the [vllm] extra)")
    p.add_argument("--batch-size", default=None,
                   help="default: auto on GPU (largest that fits), 1 on CPU; an integer or 'auto'")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--dtype", default="auto", help="model dtype (auto, float32, bfloat16)")
    p.add_argument("--bootstrap-iters", type=int, default=100000, help="lm-eval bootstrap iterations for stderrs")
    p.add_argument("--apply-chat-template", action=argparse.BooleanOptionalAction, default=None,
                   help="format prompts with the tokenizer's chat template (default: on when the tokenizer has "
                        "one, i.e. for instruct models)")
    p.add_argument("--max-gen-toks", type=int, default=None,
                   help="cap new tokens of generative tasks and judge-benchmark answers (smoke runs; recorded, "
                        "and the table will not compare it with uncapped scores)")
    judge = p.add_argument_group("LLM judge (logickor, ko_mtbench)")
    judge.add_argument("--judge", default=None, metavar="URL",
                       help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000 or https://api.openai.com/v1")
    judge.add_argument("--judge-model", default=None, metavar="NAME", help="judge model name (recorded with every score)")
    judge.add_argument("--judge-api-key-env", default="OPENAI_API_KEY",
                       help="environment variable holding the API key (default OPENAI_API_KEY; unset is fine locally)")
    judge.add_argument("--judge-cache", type=Path, default=None,
                       help="judgement cache (JSONL; default <output stem>.judge_cache.jsonl): a re-run asks nothing twice")
    judge.add_argument("--judge-retries", type=int, default=6, help="retries of a failed judge request")
    judge.add_argument("--judge-backoff", type=float, default=2.0, help="first back-off in seconds (doubles)")
    judge.add_argument("--judge-timeout", type=float, default=300.0, help="seconds per judge request")
    p.add_argument("--allow-code-execution", action="store_true", help="allow tasks that execute generated code (MBPP+)")
    p.add_argument("--seed", type=int, default=0, help="seed of lm-eval's sampling and few-shot selection (default 0)")
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
    p.add_argument("--allow-mixed", action="store_true",
                   help="place side by side scores of one column made with different settings (lm-eval or task "
                        "version, shots, backend, dtype, chat template, judge …); they are marked ≠")
    return p


def _list_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(
        prog="midm eval list",
        description="List the benchmarks: model card column, shots, metric, the Hugging Face Hub dataset(s) each "
                    "reads (offline, `--data-dir DIR` must hold DIR/<hub id>) and the lm-eval tasks.")


def build_parsers() -> list[argparse.ArgumentParser]:
    """The three forms of ``midm eval``: a run, ``list`` and ``table`` (for help checks)."""
    return [_run_parser(), _list_parser(), _table_parser()]


def cmd_run(argv: list[str]) -> int:
    args = _run_parser().parse_args(argv)
    from evaluation import runner

    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    # bad input raises MidmError, reported once by midm/cli.py (exit 2)
    if (args.judge is None) != (args.judge_model is None):
        raise runner.EvalError("--judge URL and --judge-model NAME go together")
    benchmarks = registry.resolve(names, judge=args.judge is not None)
    judge = None
    if args.judge is not None:
        from evaluation.judge.client import JudgeConfig

        judge = JudgeConfig(url=args.judge, model=args.judge_model, api_key_env=args.judge_api_key_env,
                            timeout_s=args.judge_timeout, max_retries=args.judge_retries,
                            backoff_s=args.judge_backoff, cache=args.judge_cache)
    device = args.device or _default_device()
    summary = runner.run(args.model, benchmarks, data_dir=args.data_dir, output=args.output, limit=args.limit,
                         batch_size=args.batch_size, device=device, dtype=args.dtype,
                         bootstrap_iters=args.bootstrap_iters, apply_chat_template=args.apply_chat_template,
                         allow_code_execution=args.allow_code_execution, seed=args.seed, backend=args.backend,
                         max_gen_toks=args.max_gen_toks, judge=judge)
    for name, res in summary.get("benchmarks", {}).items():
        score = "n/a" if res["score"] is None else f"{res['score']:.2f}"
        extra = f", judge {res['judge_model']}, {res['n_unparseable']} unparseable" if "judge_model" in res else ""
        print(f"{name:<22} {score:>8}  ({res['metric']}, {res['num_fewshot']}-shot, n={res['n_samples']}{extra})")
        if res.get("n_unparseable"):
            print(f"midm eval: warning: {name}: {res['n_unparseable']} of {res['n_judgements']} judgements had no "
                  "score on the benchmark's scale; left out of the mean (see the results file)", file=sys.stderr)
    print(f"summary: {args.output}")
    return 0


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def cmd_list(argv: list[str]) -> int:
    _list_parser().parse_args(argv)
    print(f"{'name':<22} {'card column':<14} {'shots':>5}  {'metric':<30} {'hub dataset (--data-dir DIR/<id>)':<34} "
          "lm-eval tasks / note")
    for b in registry.BENCHMARKS.values():
        tasks = ",".join(b.lm_eval_tasks) or "(LLM judge: --judge URL --judge-model NAME)"
        hub = ",".join(b.hub_datasets) or "-"
        print(f"{b.name:<22} {b.title:<14} {b.num_fewshot:>5}  {b.results_key:<30} {hub:<34} {tasks}")
    return 0


def cmd_table(argv: list[str]) -> int:
    args = _table_parser().parse_args(argv)
    from evaluation import tables

    try:
        ours = tables.load_results(args.results, args.label)
        tables.check_comparable(ours, allow_mixed=args.allow_mixed)
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
