"""Backends (hf|vllm, batch size, chat-template default), micro/macro aggregation, provenance in the
results file, the Ko-IFEval lm-eval task end to end, and the table's refusal of mixed settings."""
from __future__ import annotations

import importlib.util
import json

import pytest

from evaluation import backends, registry, runner, tables
from midm.cli import main as midm_main
from evaluation.ko_ifeval import scoring

@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="checks the error shown when vLLM is absent")
def test_vllm_absent_is_a_clear_usage_error(tiny_hf_model, tmp_path, capsys):
    code = midm_main(["eval", "--model", str(tiny_hf_model), "--tasks", "klue_nli_mc", "--backend", "vllm",
                     "--output", str(tmp_path / "r.json")])
    assert code == 2
    assert "--backend vllm needs vLLM" in capsys.readouterr().err and not (tmp_path / "r.json").exists()


def test_batch_size_auto_on_gpu_only():
    assert backends.resolve_batch_size(None, "cuda:0") == "auto"
    assert backends.resolve_batch_size(None, "cpu") == 1
    assert backends.resolve_batch_size("8", "cuda") == 8 and backends.resolve_batch_size("auto", "cpu") == "auto"
    with pytest.raises(backends.EvalError, match="--batch-size"):
        backends.resolve_batch_size("many", "cpu")
    args = backends.model_args("vllm", backends.Path("/m"), dtype="bfloat16", device="cuda", batch_size="auto", seed=3)
    assert args["tensor_parallel_size"] >= 1 and args["seed"] == 3 and args["pretrained"] == "/m"


def test_chat_template_detection(tiny_hf_model, tiny_chat_model):
    assert backends.has_chat_template(tiny_chat_model) and not backends.has_chat_template(tiny_hf_model)


def test_micro_and_macro_are_both_reported():
    bench = registry.Benchmark("x", "X", ("g",), 0, "acc", aggregation="macro")
    results = {"results": {"a": {"acc,none": 1.0}, "b": {"acc,none": 0.0}},
               "n-samples": {"a": {"effective": 30}, "b": {"effective": 10}}}
    out = runner.summarize(bench, ["a", "b"], results)
    assert out["micro"] == pytest.approx(0.75) and out["macro"] == pytest.approx(0.5)
    assert out["score"] == pytest.approx(50.0) and out["aggregation"] == "macro"
    micro = runner.summarize(registry.Benchmark("x", "X", ("g",), 0, "acc"), ["a", "b"], results)
    assert micro["score"] == pytest.approx(75.0)
    assert registry.BENCHMARKS["kmmlu"].aggregation == "macro" and registry.BENCHMARKS["haerae"].aggregation == "micro"
    assert {registry.BENCHMARKS[k].aggregation for k in ("kobest_comprehension", "kobest_reasoning")} == {"macro"}


@pytest.fixture(scope="module")
def ifeval_run(tiny_chat_model, bench_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ko_ifeval") / "results.json"
    with pytest.MonkeyPatch.context() as mp:
        for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
            mp.setenv(var, "0")
        code = midm_main(["eval", "--model", str(tiny_chat_model), "--tasks", "ko_ifeval", "--data-dir", str(bench_dir),
                         "--output", str(out), "--device", "cpu", "--dtype", "float32", "--bootstrap-iters", "0",
                         "--max-gen-toks", "16", "--seed", "3"])
    assert code == 0
    return json.loads(out.read_text()), out


def test_ko_ifeval_runs_offline_with_provenance(ifeval_run):
    summary, out = ifeval_run
    result = summary["benchmarks"]["ko_ifeval"]
    assert result["n_samples"] == 8 and result["metric"] == "prompt_level_strict_acc,none"
    assert set(summary["redirected_tasks"]) == {"ko_ifeval"}
    prov = summary["provenance"]
    assert prov["apply_chat_template"] is True and prov["chat_template_detected"] is True  # default for instruct
    assert prov["backend"] == "hf" and prov["seed"] == 3 and prov["max_gen_toks"] == 16
    assert prov["lm_eval_version"] and prov["dtype"] == "float32" and prov["judge"] is None
    assert result["provenance"]["task_versions"] == {"ko_ifeval": 1.0}
    assert result["provenance"]["num_fewshot"] == {"ko_ifeval": 0}
    raw = json.loads(runner.lm_eval_results_path(out).read_text())
    assert raw["configs"]["ko_ifeval"]["generation_kwargs"]["max_gen_toks"] == 16
    assert raw["results"]["ko_ifeval"]["prompt_level_strict_acc,none"] == result["raw"]


def test_ko_ifeval_task_scores_with_the_korean_checkers():
    """The YAML's process_results is ours: a Korean response the English checker misjudges."""
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=str(registry.TASKS_DIR), include_defaults=False)
    cfg = manager.task_index["ko_ifeval"].cfg
    assert cfg["process_results"].endswith("ko_ifeval_utils.process_results")
    doc = {"key": 1, "prompt": "p", "instruction_id_list": ["keywords:forbidden_words"],
           "kwargs": [{"forbidden_words": ["사과"], "num_words": None}]}
    assert scoring.process_results(doc, ["사과를 먹었다."])["prompt_level_strict_acc"] is False


def test_no_apply_chat_template_overrides(tiny_chat_model, bench_dir, tmp_path, monkeypatch):
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(var, "0")
    summary = runner.run(tiny_chat_model, registry.resolve(["klue_nli_mc"]), data_dir=bench_dir, limit=6,
                         apply_chat_template=False, bootstrap_iters=0, output=tmp_path / "r.json")
    assert summary["provenance"]["apply_chat_template"] is False
    assert summary["provenance"]["chat_template_detected"] is True


def _row(path, score, **prov):
    run = {"lm_eval_version": "0.4.13", "backend": "hf", "dtype": "bfloat16", "seed": 0, "apply_chat_template": True,
           "limit": None, "max_gen_toks": None, **prov}
    bench = {"task_versions": {"kmmlu_accounting": 2.0}, "num_fewshot": {"kmmlu_accounting": 0},
             "metric": "acc,none", "aggregation": "macro", "aggregation_source": "KMMLU paper"}
    path.write_text(json.dumps({"schema": runner.SUMMARY_SCHEMA, "model_name": path.stem, "provenance": run,
                                "benchmarks": {"kmmlu": {"score": score, "aggregation": "macro",
                                                         "provenance": bench}}}))
    return path


def test_table_refuses_mixed_settings_unless_allowed(tmp_path, capsys):
    a = _row(tmp_path / "a.json", 40.0)
    b = _row(tmp_path / "b.json", 41.0)
    c = _row(tmp_path / "c.json", 42.0, backend="vllm", apply_chat_template=False)
    assert midm_main(["eval", "table", str(a), str(b)]) == 0                        # same settings: fine
    out = capsys.readouterr().out
    assert "KMMLU (kmmlu): macro mean" in out and "KMMLU paper" in out    # the aggregation is named
    assert midm_main(["eval", "table", str(a), str(c)]) == 2
    err = capsys.readouterr().err
    assert "different settings" in err and "backend: 'hf' ≠ 'vllm'" in err and "--allow-mixed" in err
    assert midm_main(["eval", "table", str(a), str(c), "--allow-mixed"]) == 0
    out = capsys.readouterr().out
    assert "42.0≠" in out and "`≠` kmmlu rows were scored with different settings" in out
    rows = tables.load_results([a, c])
    assert set(tables.mixed_columns(rows)) == {"kmmlu"}
