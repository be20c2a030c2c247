"""Run benchmarks from :mod:`evaluation.registry` with lm-evaluation-harness on an HF directory.

lm-eval does the work (prompting, log-likelihoods, generation, metrics). This module only
1. builds a ``TaskManager`` that indexes just the task folders the run needs (our YAMLs in
   ``evaluation/tasks`` plus the few lm-eval folders named in the registry) instead of all
   ~15k built-in YAMLs;
2. offline (``data_dir``): points every task whose Hub dataset has a local copy at
   ``DATA_DIR/<hub dataset id>`` to that copy (a Hub snapshot, or the same layout: a README.md
   declaring the configs and their data files) and forbids Hub access, so a missing copy fails
   loudly instead of downloading;
3. sets each benchmark's shot count on its tasks, runs ``simple_evaluate`` once for all, and
4. reads one number per benchmark back (size-weighted over its leaf tasks, as lm-eval's
   ``weight_by_size`` groups do) into a small JSON summary; lm-eval's own results are written
   beside it unchanged.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from evaluation.registry import TASKS_DIR, Benchmark
from midm.errors import MidmError

SUMMARY_SCHEMA = "midm.eval.results/1"


class EvalError(MidmError, RuntimeError):
    """A user-fixable problem (missing local data, bad model dir); the message says what to do."""


def _lm_eval_tasks_root() -> Path:
    import lm_eval.tasks

    return Path(lm_eval.tasks.__file__).resolve().parent


def build_task_manager(benchmarks: list[Benchmark]):
    """A TaskManager over our task folder + the lm-eval folders the benchmarks name."""
    from lm_eval.tasks import TaskManager

    root = _lm_eval_tasks_root()
    dirs = sorted({d for b in benchmarks for d in b.lm_eval_dirs})
    paths = [TASKS_DIR] + [root / d for d in dirs]
    manager = TaskManager(include_path=[str(p) for p in paths], include_defaults=False)
    wanted = {t for b in benchmarks for t in b.lm_eval_tasks}
    if not wanted <= set(manager.all_tasks):  # a folder moved in lm-eval: fall back to the full index
        manager = TaskManager(include_path=str(TASKS_DIR))
        missing = wanted - set(manager.all_tasks)
        if missing:
            raise EvalError(f"lm-eval does not know the task(s) {sorted(missing)}")
    return manager


def leaf_configs(manager, name: str, _depth: int = 0) -> dict[str, dict]:
    """{leaf task: its (unresolved) config} under a task, group or tag — read from the index only,
    so nothing is downloaded."""
    from lm_eval.tasks._index import Kind

    entry = manager.task_index.get(name)
    if entry is None or _depth > 8:
        raise EvalError(f"lm-eval has no task, group or tag {name!r}")
    if entry.kind is Kind.TAG:
        children = sorted(entry.tags)
    elif entry.kind is Kind.GROUP:
        children = [c if isinstance(c, str) else c.get("task") or c.get("group") for c in entry.cfg.get("task", [])]
    else:
        return {name: entry.cfg or {}}
    out: dict[str, dict] = {}
    for child in children:
        out.update(leaf_configs(manager, child, _depth + 1))
    return out


def _metric_names(cfg: dict) -> set[str]:
    # "!function utils.pass_at_1" is indexed as ".../utils.pass_at_1"; lm-eval names it after the function
    return {str(m.get("metric")).rsplit(".", 1)[-1] for m in cfg.get("metric_list") or []}


def validate(manager, benchmarks: list[Benchmark]) -> None:
    """Fail before loading any data when a registry entry names a metric/filter its tasks lack."""
    for bench in benchmarks:
        for task, cfg in {k: v for n in bench.lm_eval_tasks for k, v in leaf_configs(manager, n).items()}.items():
            filters = {f.get("name") for f in cfg.get("filter_list") or []} or {"none"}
            if bench.metric not in _metric_names(cfg) or bench.filter not in filters:
                raise EvalError(f"{bench.name}: lm-eval task {task} has metrics {sorted(_metric_names(cfg))} and "
                                f"filters {sorted(filters)}, not {bench.results_key!r} (fix evaluation/registry.py)")


def redirect_to_local(manager, data_dir: Path, cache_dir: Path) -> dict[str, str]:
    """Rewrite ``dataset_path`` of every indexed task whose Hub dataset is mirrored in data_dir.

    Index entries keep their YAML path; we replace them by inline entries holding the fully
    resolved config (functions and includes resolved from the original YAML) with the local path.
    Returns {task name: local path}.
    """
    from lm_eval.tasks._index import Entry, Kind
    from lm_eval.tasks._yaml_loader import load_yaml

    redirected: dict[str, str] = {}
    index = manager.task_index
    for name, entry in list(index.items()):
        if entry.kind is not Kind.TASK or not entry.cfg or entry.yaml_path is None:
            continue
        hub_path = entry.cfg.get("dataset_path")
        if not isinstance(hub_path, str) or not hub_path:
            continue
        local = data_dir / hub_path
        if not local.is_dir():
            continue
        cfg = load_yaml(entry.yaml_path, resolve_func=True)
        cfg["dataset_path"] = str(local)
        # `datasets` keys its cache of a local folder by folder name + config, not by content: an
        # edited copy, or two copies of one Hub id, would be served stale Arrow files (seen with
        # datasets 5). A private cache per run rebuilds from the files (cheap next to the evaluation).
        cfg["dataset_kwargs"] = {**(cfg.get("dataset_kwargs") or {}), "cache_dir": str(cache_dir)}
        index[name] = Entry(name=name, kind=Kind.TASK, yaml_path=None, cfg=cfg, tags=entry.tags)
        redirected[name] = str(local)
    return redirected


def check_local_data(benchmarks: list[Benchmark], data_dir: Path) -> None:
    missing = [f"{b.name}: {data_dir / hub}" for b in benchmarks for hub in b.hub_datasets
               if not (data_dir / hub).is_dir()]
    if missing:
        raise EvalError("offline run (--data-dir) but these local dataset copies are missing:\n  "
                        + "\n  ".join(missing)
                        + "\nput a Hub snapshot there (huggingface-cli download --repo-type dataset ID "
                          "--local-dir DIR/ID) or drop --data-dir to read the Hub")


def check_model_dir(model_dir: Path) -> None:
    if not (model_dir / "config.json").is_file():
        raise EvalError(f"{model_dir} is not a Hugging Face model directory (no config.json); "
                        "convert a Megatron checkpoint first with `midm convert to-hf`")
    if not any((model_dir / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")):
        raise EvalError(f"{model_dir} has no tokenizer; export it with the model: "
                        "`midm convert to-hf … --tokenizer TOKENIZER_DIR`")


def _leaf_score(results: dict, task: str, key: str) -> float:
    entry = results["results"].get(task, {})
    if key not in entry:
        raise EvalError(f"lm-eval reported no {key!r} for task {task!r} (has: {sorted(entry)})")
    return float(entry[key])


def summarize(bench: Benchmark, leaves: list[str], results: dict) -> dict[str, Any]:
    """One number per benchmark: size-weighted mean of its leaf tasks' metric, on the card's scale."""
    key = bench.results_key
    sizes = {t: int(results["n-samples"][t]["effective"]) for t in leaves}
    values = {t: _leaf_score(results, t, key) for t in leaves}
    total = sum(sizes.values())
    raw = sum(values[t] * sizes[t] for t in leaves) / total
    groups = {g: results["results"][g][key] for g in bench.lm_eval_tasks
              if g in results.get("results", {}) and key in results["results"][g]}
    return {"title": bench.title, "score": round(raw * bench.scale, 4), "raw": raw, "metric": key,
            "num_fewshot": bench.num_fewshot, "n_samples": total, "lm_eval_tasks": list(bench.lm_eval_tasks),
            "leaves": {t: {"value": values[t], "n": sizes[t]} for t in leaves},
            "lm_eval_group_values": groups}


def run(model_dir: Path, benchmarks: list[Benchmark], *, data_dir: Path | None = None,
        output: Path | None = None, limit: float | None = None, batch_size: int = 1,
        device: str = "cpu", dtype: str = "float32", bootstrap_iters: int = 100000,
        apply_chat_template: bool = False, allow_code_execution: bool = False,
        seed: int = 0) -> dict[str, Any]:
    """Evaluate ``model_dir`` on ``benchmarks``; return (and write to ``output``) the summary."""
    check_model_dir(model_dir)
    unsafe = [b.name for b in benchmarks if b.unsafe_code]
    if unsafe and not allow_code_execution:
        raise EvalError(f"{unsafe} execute model-written code; pass --allow-code-execution to run them")
    if data_dir is not None:
        data_dir = data_dir.resolve()
        check_local_data(benchmarks, data_dir)
        # Must be set before datasets/huggingface_hub are imported: they read it at import time.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    if allow_code_execution:
        os.environ["HF_ALLOW_CODE_EVAL"] = "1"

    started = time.time()
    manager = build_task_manager(benchmarks)
    validate(manager, benchmarks)
    with tempfile.TemporaryDirectory(prefix="midm-eval-datasets-") as cache_dir:
        redirected = redirect_to_local(manager, data_dir, Path(cache_dir)) if data_dir is not None else {}
        results = _evaluate(manager, benchmarks, model_dir, device=device, dtype=dtype, batch_size=batch_size,
                            limit=limit, bootstrap_iters=bootstrap_iters, apply_chat_template=apply_chat_template,
                            allow_code_execution=allow_code_execution, seed=seed)
    if results is None:  # non-zero rank under a distributed launcher
        return {}
    results, leaves_of = results

    return _summarize_run(model_dir, benchmarks, results, leaves_of, data_dir=data_dir, redirected=redirected,
                          limit=limit, started=started, output=output)


def _evaluate(manager, benchmarks: list[Benchmark], model_dir: Path, *, device: str, dtype: str, batch_size: int,
              limit: float | None, bootstrap_iters: int, apply_chat_template: bool, allow_code_execution: bool,
              seed: int):
    """Load the tasks (datasets are read here), set each benchmark's shots, run lm-eval once."""
    from lm_eval import simple_evaluate  # heavy: imported only when a run starts

    top_level: list = []
    leaves_of: dict[str, list[str]] = {}
    for bench in benchmarks:
        loaded = manager.load(list(bench.lm_eval_tasks))
        for task in loaded["tasks"].values():
            task.set_config(key="num_fewshot", value=bench.num_fewshot)
        leaves_of[bench.name] = sorted(loaded["tasks"])
        top_level += [loaded["groups"].get(n) or loaded["tasks"][n] for n in bench.lm_eval_tasks]
    results = simple_evaluate(
        model="hf",
        model_args={"pretrained": str(model_dir), "dtype": dtype},
        tasks=top_level, batch_size=batch_size, device=device, limit=limit,
        bootstrap_iters=bootstrap_iters, log_samples=False, task_manager=manager,
        apply_chat_template=apply_chat_template, confirm_run_unsafe_code=allow_code_execution,
        random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
    )
    return None if results is None else (results, leaves_of)


def _summarize_run(model_dir: Path, benchmarks: list[Benchmark], results: dict, leaves_of: dict, *,
                   data_dir: Path | None, redirected: dict, limit: float | None, started: float,
                   output: Path | None) -> dict[str, Any]:
    summary = {
        "schema": SUMMARY_SCHEMA,
        "model": str(model_dir),
        "model_name": model_dir.resolve().name,
        "data_dir": str(data_dir) if data_dir else None,
        "offline": data_dir is not None,
        "redirected_tasks": redirected,
        "limit": limit,
        "elapsed_s": round(time.time() - started, 2),
        "lm_eval_version": _lm_eval_version(),
        "benchmarks": {b.name: summarize(b, leaves_of[b.name], results) for b in benchmarks},
    }
    if output is not None:
        write_outputs(output, summary, results)
    return summary


def _lm_eval_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")


def lm_eval_results_path(output: Path) -> Path:
    return output.with_name(output.stem + ".lm_eval.json")


def write_outputs(output: Path, summary: dict, results: dict) -> None:
    """Summary at ``output``; lm-eval's own results (JSON-safe) at ``<stem>.lm_eval.json``."""
    from lm_eval.utils import handle_non_serializable

    output.parent.mkdir(parents=True, exist_ok=True)
    raw = {k: results[k] for k in ("results", "groups", "group_subtasks", "configs", "versions",
                                   "n-shot", "higher_is_better", "n-samples", "config") if k in results}
    raw_path = lm_eval_results_path(output)
    raw_path.write_text(json.dumps(raw, indent=2, ensure_ascii=False, default=handle_non_serializable))
    summary["lm_eval_results"] = raw_path.name
    tmp = output.with_suffix(output.suffix + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    tmp.replace(output)
