"""What produced a number: recorded in every results file, compared by ``midm eval table``.

Run level (:func:`for_run`): package versions (lm-eval, transformers, torch, vLLM), backend and its
model arguments, dtype, device, seed, chat-template use (and whether the tokenizer has one),
``--limit``, ``--max-gen-toks``, the judge. Benchmark level (:func:`for_benchmark`): lm-eval task
versions and shots per leaf task, metric, aggregation (micro/macro), judge model and prompt source.

:func:`signature` is the subset that must be equal for two rows to share a table column: anything
that changes the number other than the model itself. Device and batch size are left out (they do
not change what is computed, only how fast).
"""
from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def for_run(*, backend: str, model_args: dict[str, Any], dtype: str, device: str, seed: int,
            apply_chat_template: bool, chat_template_detected: bool, limit: float | None,
            max_gen_toks: int | None, judge=None) -> dict[str, Any]:
    return {
        "lm_eval_version": package_version("lm_eval"),
        "transformers_version": package_version("transformers"),
        "torch_version": package_version("torch"),
        "vllm_version": package_version("vllm") if backend == "vllm" else None,
        "backend": backend,
        "model_args": {k: v for k, v in model_args.items() if k != "pretrained"},
        "dtype": dtype, "device": device, "seed": seed,
        "apply_chat_template": apply_chat_template, "chat_template_detected": chat_template_detected,
        "limit": limit, "max_gen_toks": max_gen_toks,
        "judge": None if judge is None else {"model": judge.model, "url": judge.url},
    }


def for_benchmark(bench, results: dict | None, summary: dict[str, Any], *, judge=None) -> dict[str, Any]:
    leaves = list(summary.get("leaves", {}))
    versions = (results or {}).get("versions", {})
    shots = (results or {}).get("n-shot", {})
    out: dict[str, Any] = {
        "task_versions": {t: versions.get(t) for t in leaves},
        "num_fewshot": {t: shots.get(t, bench.num_fewshot) for t in leaves} if leaves else bench.num_fewshot,
        "metric": bench.results_key, "aggregation": summary.get("aggregation"),
        "aggregation_source": getattr(bench, "aggregation_source", ""),
    }
    if judge is not None:
        from evaluation.judge.benchmarks import JUDGE_BENCHMARKS, PROMPTS

        name = {"logickor": "logickor", "ko_mtbench": "komtbench"}[bench.name]
        out["judge"] = {"model": judge.model,
                        "prompts": json.loads((PROMPTS / f"{name}.json").read_text(encoding="utf-8"))["source"],
                        "scale": list(JUDGE_BENCHMARKS[bench.name].scale)}
    return out


RUN_KEYS = ("lm_eval_version", "backend", "dtype", "seed", "apply_chat_template", "limit", "max_gen_toks")


def signature(run: dict[str, Any] | None, bench: dict[str, Any] | None) -> dict[str, Any]:
    """The settings that must match for two scores of one column to be compared (empty when a
    results file predates provenance)."""
    if not run and not bench:
        return {}
    run, bench = run or {}, bench or {}
    sig = {k: run.get(k) for k in RUN_KEYS}
    sig.update({k: bench.get(k) for k in ("task_versions", "num_fewshot", "metric", "aggregation")})
    judge = bench.get("judge")
    sig["judge"] = None if not judge else {"model": judge.get("model"), "prompts": judge.get("prompts")}
    return sig


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Keys whose values differ, as 'key: A ≠ B' lines."""
    return [f"{k}: {a.get(k)!r} ≠ {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
