"""``midm demo`` — the whole Mi:dm lineage at tiny scale, through the real ``midm`` stages.

filter (8 stages) → tokenizer train/eval → tokenize → pretrain the parent → DuS → continued
training (vs. the same deep model from scratch, and vs. the parent trained on for the same tokens) →
prune → distill (vs. the small model from scratch) → SFT of both on Korean conversations → convert to HF → generate Korean continuations →
chat replies and held-out assistant loss before/after SFT → evaluate (``-inst`` models through
their chat template) → model-card table →
``report.md`` / ``report.html`` (each claim with its numbers, scores beside chance, a "Run" section with
wall times, machine, versions and the command; ``benchmarks/report_screenshot.py`` checks its layout in
headless Chromium). Every step but one is a subprocess running the same CLI a cluster job
runs (``midm/runs.py``), except generation, which loads the exported HF models in-process with
``transformers``; each log goes to ``OUT/logs/`` and each summary to ``OUT/summaries/``. Finished stages are
reused on a re-run unless ``--force``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from midm.demo_stages import STAGES, DemoContext, Family
from recipes.args import add_set_arg

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "demo_data" / "web_sample.jsonl.gz"
DEFAULT_EVAL_DATA = REPO / "demo_data" / "benchmarks"

FAMILIES = {
    # parent recipe → (parent, depth-up-scaled, pruned+distilled), DuS map; prune targets are the mini recipe's
    "tiny": Family("tiny", "tiny_deep", "tiny_mini", "solar:1"),
    "midm_8b": Family("midm_8b", "midm_base", "midm_mini", "solar:8"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="midm demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(DEFAULT_DATA),
                        help="JSONL(.gz) file or directory with a `text` field, or a Hugging Face dataset id "
                             "(online only); default: the bundled sample")
    parser.add_argument("--recipe", default="tiny", choices=sorted(FAMILIES), help="parent recipe of the lineage")
    parser.add_argument("--out", default="demo_out", help="output directory")
    parser.add_argument("--stages", default="all",
                        help=f"comma-separated subset of: {', '.join(STAGES)} (default: all)")
    parser.add_argument("--force", action="store_true", help="re-run stages that already finished")
    parser.add_argument("--steps", type=int, default=400, help="pretraining steps of the parent")
    parser.add_argument("--continue-steps", type=int, default=100,
                        help="steps of continued training / distillation and of each from-scratch baseline")
    parser.add_argument("--vocab-size", type=int, default=4096, help="tokenizer vocabulary (padded)")
    parser.add_argument("--sft-epochs", type=float, default=1.0,
                        help="SFT epochs over the bundled conversations for the Mini (the Base gets half)")
    parser.add_argument("--chat-prompts", type=int, default=24,
                        help="held-out questions each model answers through its chat template (before/after SFT)")
    parser.add_argument("--eval-data", default=str(DEFAULT_EVAL_DATA), help="local benchmark directory for midm eval")
    parser.add_argument("--eval-limit", type=int, default=None, help="examples per eval task (default: all)")
    add_set_arg(parser, "recipe override applied to every training stage (repeatable)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    selected = list(STAGES) if args.stages == "all" else [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in selected if s not in STAGES]
    if unknown:
        print(f"midm demo: unknown stage(s) {unknown}; choose from {', '.join(STAGES)}", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    ctx = DemoContext(out=out, data=args.data, family=FAMILIES[args.recipe], steps=args.steps,
                      continue_steps=args.continue_steps, vocab_size=args.vocab_size, eval_data=args.eval_data,
                      eval_limit=args.eval_limit, overrides=args.overrides, sft_epochs=args.sft_epochs,
                      chat_prompts=args.chat_prompts)
    for sub in ("logs", "summaries"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    if selected == list(STAGES) or not (out / "summaries" / "run.json").exists():  # a partial re-run keeps it
        from midm.demo_env import run_environment

        env = run_environment(sys.argv[2:] if argv is None else list(argv))
        (out / "summaries" / "run.json").write_text(json.dumps(env, indent=2))
    started = time.perf_counter()
    timings: dict[str, float] = json.loads((out / "summaries" / "timings.json").read_text()) \
        if (out / "summaries" / "timings.json").exists() else {}
    print(f"midm demo: {len(selected)} stages → {out}", flush=True)
    for number, name in enumerate(selected, 1):
        done = out / "summaries" / f"{name}.json"
        label = f"[{number}/{len(selected)} {name}]"
        if done.exists() and not args.force:
            print(f"{label} finished earlier — reusing (use --force to re-run)", flush=True)
            continue
        stage_start = time.perf_counter()
        print(f"{label} …", flush=True)
        try:
            summary = STAGES[name](ctx, label)
        except Exception as err:  # report which stage failed and where its log is, then stop
            print(f"{label} FAILED: {err}\n  log: {out / 'logs' / (name + '.log')}", file=sys.stderr, flush=True)
            return 1
        timings[name] = time.perf_counter() - stage_start
        summary["seconds"] = round(timings[name], 1)
        done.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
        (out / "summaries" / "timings.json").write_text(json.dumps(timings, indent=2))
        print(f"{label} done in {timings[name]:.1f} s", flush=True)
    total = time.perf_counter() - started
    print(f"midm demo: finished in {total:.1f} s (stage total {sum(timings.values()):.1f} s); "
          f"report: {out / 'report.html'}", flush=True)
    return 0


