"""Run benchmarks from :mod:`evaluation.registry` with lm-evaluation-harness on an HF directory.

lm-eval does the work (prompting, log-likelihoods, generation, metrics). This module only
1. builds a ``TaskManager`` that indexes just the task folders the run needs (our YAMLs in
   ``evaluation/tasks`` plus the few lm-eval folders named in the registry) instead of all
   ~15k built-in YAMLs;
2. offline (``data_dir``): points every task whose Hub dataset has a local copy at
   ``DATA_DIR/<hub dataset id>`` to that copy (a Hub snapshot, or the same layout: a README.md
   declaring the configs and their data files) and forbids Hub access, so a missing copy fails
   loudly instead of downloading;
3. sets each benchmark's shot count on its tasks, runs ``simple_evaluate`` once for all with one
   lm-eval model object (HF or vLLM, :mod:`evaluation.backends`), and
4. reads one number per benchmark back into a small JSON summary: micro (size-weighted) and macro
   (unweighted) means over its leaf tasks, the paper's one as the score; lm-eval's own results are
   written beside it unchanged;
5. runs the judge-scored benchmarks (:mod:`evaluation.judge`) with the same model object, and
6. records the provenance of every number (:mod:`evaluation.provenance`).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from evaluation import provenance
from evaluation.backends import EvalError
from evaluation.registry import TASKS_DIR, Benchmark

SUMMARY_SCHEMA = "midm.eval.results/2"
READABLE_SCHEMAS = ("midm.eval.results/1", SUMMARY_SCHEMA)  # /1: no provenance, no micro/macro

__all__ = ["EvalError", "SUMMARY_SCHEMA", "run"]


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


def redirect_to_local(manager, data_dir: Path, cache_dir: Path, only: set[str] | None = None) -> dict[str, str]:
    """Rewrite ``dataset_path`` of every indexed task whose Hub dataset is mirrored in data_dir.

    Index entries keep their YAML path; we replace them by inline entries holding the fully
    resolved config (functions and includes resolved from the original YAML) with the local path.
    ``only``: the leaf tasks of this run (others are left alone: resolving a YAML imports its Python
    hooks). Returns {task name: local path}.
    """
    from lm_eval.tasks._index import Entry, Kind
    from lm_eval.tasks._yaml_loader import load_yaml

    redirected: dict[str, str] = {}
    index = manager.task_index
    for name, entry in list(index.items()):
        if entry.kind is not Kind.TASK or not entry.cfg or entry.yaml_path is None:
            continue
        if only is not None and name not in only:
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
    """One number per benchmark on the card's scale: the micro (size-weighted) or macro (unweighted)
    mean of its leaf tasks' metric, whichever ``bench.aggregation`` names; both are kept."""
    key = bench.results_key
    sizes = {t: int(results["n-samples"][t]["effective"]) for t in leaves}
    values = {t: _leaf_score(results, t, key) for t in leaves}
    total = sum(sizes.values())
    micro = sum(values[t] * sizes[t] for t in leaves) / total
    macro = sum(values.values()) / len(values)
    raw = macro if bench.aggregation == "macro" else micro
    groups = {g: results["results"][g][key] for g in bench.lm_eval_tasks
              if g in results.get("results", {}) and key in results["results"][g]}
    return {"title": bench.title, "score": round(raw * bench.scale, 4), "raw": raw, "metric": key,
            "aggregation": bench.aggregation, "micro": micro, "macro": macro,
            "score_micro": round(micro * bench.scale, 4), "score_macro": round(macro * bench.scale, 4),
            "num_fewshot": bench.num_fewshot, "n_samples": total, "lm_eval_tasks": list(bench.lm_eval_tasks),
            "leaves": {t: {"value": values[t], "n": sizes[t]} for t in leaves},
            "lm_eval_group_values": groups, **answer_distribution(results, leaves, bench.scale)}


def _loglikelihood(resp) -> float:
    while isinstance(resp, (list, tuple)):  # (loglikelihood, is_greedy), possibly wrapped once more
        resp = resp[0]
    return float(resp)


def answer_distribution(results: dict, leaves: list[str], scale: float = 100.0) -> dict[str, Any]:
    """For multiple-choice leaves: how often the model picked each answer, how often each was right,
    and the chance level on the card's scale.

    Reads lm-eval's logged samples (``results["samples"][task]``: per choice the log-likelihood of its
    continuation); the pick is the arg-max log-likelihood, as lm-eval's ``acc``. Returns
    ``{"answers": {"choices", "predicted", "gold"}, "chance": float}`` (counts per choice text), or ``{}``
    when there are no multiple-choice samples (generative tasks, or samples not logged).
    """
    samples = results.get("samples") or {}
    predicted: dict[str, int] = {}
    gold: dict[str, int] = {}
    choices: list[str] = []
    inverse_choices: list[float] = []
    for task in leaves:
        for sample in samples.get(task, []):
            args = sample.get("arguments") or []
            resps = sample.get("filtered_resps") or []
            if len(args) < 2 or len(args) != len(resps):
                continue
            texts = [str(a[1]).strip() for a in args]
            pick = max(range(len(resps)), key=lambda i: _loglikelihood(resps[i]))
            predicted[texts[pick]] = predicted.get(texts[pick], 0) + 1
            target = sample.get("target")
            if isinstance(target, int) and 0 <= target < len(texts):
                gold[texts[target]] = gold.get(texts[target], 0) + 1
            choices += [t for t in texts if t not in choices]
            inverse_choices.append(1.0 / len(texts))
    if not inverse_choices:
        return {}
    return {"answers": {"choices": choices, "predicted": {c: predicted.get(c, 0) for c in choices},
                        "gold": {c: gold.get(c, 0) for c in choices}},
            "chance": round(scale * sum(inverse_choices) / len(inverse_choices), 4)}


def run(model_dir: Path, benchmarks: list[Benchmark], *, data_dir: Path | None = None,
        output: Path | None = None, limit: float | None = None, batch_size: int | str | None = None,
        device: str = "cpu", dtype: str = "float32", bootstrap_iters: int = 100000,
        apply_chat_template: bool | None = None, allow_code_execution: bool = False, seed: int = 0,
        backend: str = "hf", max_gen_toks: int | None = None, judge=None) -> dict[str, Any]:
    """Evaluate ``model_dir`` on ``benchmarks``; return (and write to ``output``) the summary.

    ``apply_chat_template=None`` uses the chat template when the tokenizer has one (instruct model).
    ``batch_size=None``: ``"auto"`` on CUDA, 1 on CPU. ``max_gen_toks`` caps generation of the
    generative tasks (recorded; a capped score is not the benchmark's). ``judge`` is a
    :class:`evaluation.judge.client.JudgeConfig`, needed by judge-scored benchmarks.
    Raises :class:`EvalError` for anything the user can fix.
    """
    from evaluation import backends

    check_model_dir(model_dir)
    backends.check_backend(backend)
    judged = [b for b in benchmarks if b.requires_judge]
    harness = [b for b in benchmarks if not b.requires_judge]
    if judged and judge is None:
        raise EvalError(f"{[b.name for b in judged]} are scored by an LLM judge: pass --judge URL --judge-model NAME")
    chat_detected = backends.has_chat_template(model_dir)
    use_chat = chat_detected if apply_chat_template is None else apply_chat_template
    if use_chat and not chat_detected:
        raise EvalError(f"--apply-chat-template, but the tokenizer in {model_dir} has no chat template")
    if judged and not use_chat:
        raise EvalError(f"{[b.name for b in judged]} generate answers through the model's chat template; "
                        "drop --no-apply-chat-template (and use an instruct model with a chat template)")
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
    if judged:
        from evaluation.judge.client import check_reachable

        cache = judge.cache or (judge_cache_path(output) if output is not None else None)
        if cache is None or not Path(cache).is_file() or not Path(cache).stat().st_size:
            check_reachable(judge)  # before hours of generation, not after (a cached re-run may run offline)

    started = time.time()
    batch = backends.resolve_batch_size(batch_size, device)
    model_args = backends.model_args(backend, model_dir, dtype=dtype, device=device, batch_size=batch, seed=seed)
    manager = build_task_manager(harness) if harness else None
    if manager is not None:
        validate(manager, harness)
    lm = backends.make_lm(backend, model_args)
    timings: dict[str, float] = {"model_load": round(time.time() - started, 3)}
    summaries: dict[str, dict] = {}
    results: dict | None = None
    redirected: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="midm-eval-datasets-") as cache_dir, \
            _hub_unreachable_is_a_user_error(benchmarks, data_dir), _lm_eval_git_env():
        if harness:
            wanted = {t for b in harness for n in b.lm_eval_tasks for t in leaf_configs(manager, n)}
            redirected = (redirect_to_local(manager, data_dir, Path(cache_dir), only=wanted)
                          if data_dir is not None else {})
            t0 = time.time()
            evaluated = _evaluate(manager, harness, lm, limit=limit, bootstrap_iters=bootstrap_iters,
                                  apply_chat_template=use_chat, allow_code_execution=allow_code_execution,
                                  seed=seed, max_gen_toks=max_gen_toks)
            if evaluated is None:  # non-zero rank under a distributed launcher
                return {}
            results, leaves_of = evaluated
            timings["lm_eval"] = round(time.time() - t0, 3)
            summaries.update({b.name: summarize(b, leaves_of[b.name], results) for b in harness})
        judge_records: dict[str, list] = {}
        judge_stats = None
        if judged:
            summaries_j, judge_records, judge_stats = _run_judged(judged, lm, judge, output, data_dir=data_dir,
                                                                  limit=limit, seed=seed, max_gen_toks=max_gen_toks,
                                                                  cache_dir=Path(cache_dir))
            summaries.update(summaries_j)

    for bench in benchmarks:
        summaries[bench.name]["provenance"] = provenance.for_benchmark(bench, results, summaries[bench.name],
                                                                        judge=judge if bench.requires_judge else None)
    summary = {
        "schema": SUMMARY_SCHEMA, "model": str(model_dir), "model_name": model_dir.resolve().name,
        "data_dir": str(data_dir) if data_dir else None, "offline": data_dir is not None,
        "redirected_tasks": redirected, "limit": limit, "elapsed_s": round(time.time() - started, 2),
        "timings_s": timings, "lm_eval_version": provenance.package_version("lm_eval"),
        "provenance": provenance.for_run(backend=backend, model_args=model_args, dtype=dtype, device=device,
                                         seed=seed, apply_chat_template=use_chat, chat_template_detected=chat_detected,
                                         limit=limit, max_gen_toks=max_gen_toks, judge=judge),
        "benchmarks": {b.name: summaries[b.name] for b in benchmarks},
    }
    if judge_stats is not None:
        summary["judge"] = {"model": judge.model, "url": judge.url, **judge_stats}
    if output is not None:
        write_outputs(output, summary, results, judge_records)
    return summary


@contextlib.contextmanager
def _hub_unreachable_is_a_user_error(benchmarks: list[Benchmark], data_dir: Path | None):
    """Without ``--data-dir`` the datasets come from the Hub; unreachable (offline, ``HF_HUB_OFFLINE=1``),
    ``datasets`` raises ``ConnectionError("Couldn't reach '<id>' on the Hub (…)")``: say what to pass."""
    try:
        yield
    except ConnectionError as err:
        if data_dir is not None:
            raise
        ids = sorted({hub for b in benchmarks for hub in b.hub_datasets})
        raise EvalError(f"the Hugging Face Hub is not reachable ({err}): run online, or pass --data-dir DIR "
                        f"holding a copy of each dataset as DIR/<hub id> ({', '.join(ids)}; `midm eval list` "
                        "names them per benchmark)") from None


@contextlib.contextmanager
def _lm_eval_git_env():
    """lm-eval runs ``git describe`` for its ``git_hash``; outside a git work tree git prints ``fatal: not
    a git repository``. Point it at this code's checkout for the run (:func:`midm.quiet.git_env_for_lm_eval`)."""
    from midm.quiet import git_env_for_lm_eval

    env = git_env_for_lm_eval()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_judged(judged: list[Benchmark], lm, judge, output: Path | None, *, data_dir: Path | None,
                limit: float | None, seed: int, max_gen_toks: int | None, cache_dir: Path):
    from evaluation.judge.cache import JudgeCache
    from evaluation.judge.client import JudgeClient
    from evaluation.judge.run import run_benchmark

    cache_path = judge.cache or (judge_cache_path(output) if output is not None else None)
    client = JudgeClient(judge, JudgeCache(cache_path))
    summaries, records = {}, {}
    for bench in judged:
        entry, items = run_benchmark(bench.name, lm, client, data_dir=data_dir, limit=limit, seed=seed,
                                     max_gen_toks=max_gen_toks, cache_dir=cache_dir)
        raw = entry["score"]
        summaries[bench.name] = {"title": bench.title, **entry, "metric": bench.results_key,
                                 "score": None if raw is None else round(raw * bench.scale, 4),
                                 "num_fewshot": 0, "n_samples": entry["n_questions"], "aggregation": "benchmark"}
        records[bench.name] = items
    stats = {**client.stats.as_dict(), "cache": str(cache_path) if cache_path else None}
    return summaries, records, stats


def _evaluate(manager, benchmarks: list[Benchmark], lm, *, limit: float | None, bootstrap_iters: int,
              apply_chat_template: bool, allow_code_execution: bool, seed: int, max_gen_toks: int | None):
    """Load the tasks (datasets are read here), set each benchmark's shots, run lm-eval once."""
    from lm_eval import simple_evaluate  # heavy: imported only when a run starts

    top_level: list = []
    leaves_of: dict[str, list[str]] = {}
    for bench in benchmarks:
        loaded = manager.load(list(bench.lm_eval_tasks))
        for task in loaded["tasks"].values():
            task.set_config(key="num_fewshot", value=bench.num_fewshot)
            if max_gen_toks is not None and task.config.output_type == "generate_until":
                task.set_config(key="generation_kwargs", value={**(task.config.generation_kwargs or {}),
                                                                "max_gen_toks": max_gen_toks}, update=False)
        leaves_of[bench.name] = sorted(loaded["tasks"])
        top_level += [loaded["groups"].get(n) or loaded["tasks"][n] for n in bench.lm_eval_tasks]
    results = simple_evaluate(
        # samples logged (kept in memory only) for the answer distribution of multiple-choice tasks
        model=lm, tasks=top_level, limit=limit, bootstrap_iters=bootstrap_iters, log_samples=True,
        task_manager=manager, apply_chat_template=apply_chat_template, confirm_run_unsafe_code=allow_code_execution,
        random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
    )
    return None if results is None else (results, leaves_of)


def lm_eval_results_path(output: Path) -> Path:
    return output.with_name(output.stem + ".lm_eval.json")


def judge_records_path(output: Path) -> Path:
    return output.with_name(output.stem + ".judge.jsonl")


def judge_cache_path(output: Path) -> Path:
    return output.with_name(output.stem + ".judge_cache.jsonl")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_outputs(output: Path, summary: dict, results: dict | None, judge_records: dict | None = None) -> None:
    """Summary at ``output``; lm-eval's own results (JSON-safe) at ``<stem>.lm_eval.json``; every judged
    answer with its judgement at ``<stem>.judge.jsonl``. All written via tmp + rename."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if results is not None:
        from lm_eval.utils import handle_non_serializable

        raw = {k: results[k] for k in ("results", "groups", "group_subtasks", "configs", "versions",
                                       "n-shot", "higher_is_better", "n-samples", "config") if k in results}
        raw_path = lm_eval_results_path(output)
        _atomic_write(raw_path, json.dumps(raw, indent=2, ensure_ascii=False, default=handle_non_serializable))
        summary["lm_eval_results"] = raw_path.name
    if judge_records:
        path = judge_records_path(output)
        _atomic_write(path, "".join(json.dumps({"benchmark": name, **r}, ensure_ascii=False) + "\n"
                                    for name, items in judge_records.items() for r in items))
        summary["judge_records"] = path.name
    _atomic_write(output, json.dumps(summary, indent=2, ensure_ascii=False))
