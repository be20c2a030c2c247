"""`midm eval` end to end, offline: real lm-eval tasks on the committed KLUE-NLI / KorNLI samples with
a tiny random Llama. Our summary must equal (a) lm-eval's own CLI run on the same model and data and
(b) an independent log-likelihood scoring written here with `transformers` alone."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from evaluation import cli, registry, runner
from midm.cli import main as midm_main
from tests.conftest import REPO

LOCAL_TASKS = ["klue_nli_mc", "kornli_mc"]
LOCAL_DATA = {"klue_nli_mc": "klue/klue/nli/validation.jsonl", "kornli_mc": "kakaobrain/kor_nli/xnli/validation.jsonl"}
CHOICES = ["참", "알 수 없음", "거짓"]


@pytest.fixture(scope="module")
def our_run(tiny_hf_model, bench_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "results.json"
    with pytest.MonkeyPatch.context() as mp:  # the runner turns Hub access off for offline runs
        mp.setenv("HF_HUB_OFFLINE", "0")
        mp.setenv("HF_DATASETS_OFFLINE", "0")
        code = cli.main(["--model", str(tiny_hf_model), "--tasks", ",".join(LOCAL_TASKS), "--data-dir", str(bench_dir),
                         "--output", str(out), "--dtype", "float32", "--device", "cpu", "--bootstrap-iters", "0"])
    assert code == 0
    return json.loads(out.read_text()), out


def test_summary_shape(our_run):
    summary, out = our_run
    assert summary["schema"] == runner.SUMMARY_SCHEMA and summary["offline"] is True
    assert set(summary["redirected_tasks"]) == set(LOCAL_TASKS)
    for name in LOCAL_TASKS:
        bench = summary["benchmarks"][name]
        assert bench["n_samples"] == 60 and bench["num_fewshot"] == 0 and bench["metric"] == "acc,none"
        assert bench["score"] == pytest.approx(100 * bench["raw"])
    assert runner.lm_eval_results_path(out).is_file()


def test_scores_equal_lm_eval_on_plain_task_files(our_run, tiny_hf_model, bench_dir, tmp_path):
    """lm-eval alone — plain YAMLs that include ours and name the local copy, no redirection, no shot
    override, no summarizing of ours — reports the very same numbers."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    summary, _ = our_run
    for name in LOCAL_TASKS:
        hub = registry.BENCHMARKS[name].hub_datasets[0]
        (tmp_path / f"{name}.yaml").write_text(
            f"include: {REPO / 'evaluation' / 'tasks' / (name + '.yaml')}\ntask: {name}\n"
            f"dataset_path: {bench_dir / hub}\ndataset_kwargs:\n  cache_dir: {tmp_path / 'datasets'}\n")
    theirs = simple_evaluate(model="hf", model_args={"pretrained": str(tiny_hf_model), "dtype": "float32"},
                             tasks=LOCAL_TASKS, device="cpu", batch_size=1, bootstrap_iters=0,
                             task_manager=TaskManager(include_path=str(tmp_path), include_defaults=False))
    for name in LOCAL_TASKS:
        assert theirs["n-samples"][name]["effective"] == summary["benchmarks"][name]["n_samples"]
        assert theirs["results"][name]["acc,none"] == summary["benchmarks"][name]["raw"]
    saved = json.loads(runner.lm_eval_results_path(our_run[1]).read_text())
    assert saved["results"]["klue_nli_mc"]["acc,none"] == summary["benchmarks"]["klue_nli_mc"]["raw"]


def _independent_accuracy(model_dir: Path, data_file: Path) -> tuple[float, dict[str, int]]:
    """Argmax of summed continuation log-likelihood, as lm-eval defines `acc` for multiple choice; also how
    often each answer was picked."""
    from transformers import AutoTokenizer, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = LlamaForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).eval()
    docs = [json.loads(line) for line in data_file.read_text(encoding="utf-8").splitlines()]
    correct, picked = 0, {choice: 0 for choice in CHOICES}
    for doc in docs:
        context = (f"전제: {doc['premise']}\n가설: {doc['hypothesis']}\n"
                   "질문: 전제가 참일 때 가설은 참, 알 수 없음, 거짓 중 무엇입니까?\n정답:")
        ctx = tok(context, add_special_tokens=False)["input_ids"]
        wholes = [tok(context + " " + choice, add_special_tokens=False)["input_ids"] for choice in CHOICES]
        width = max(map(len, wholes))
        batch = torch.tensor([w + [0] * (width - len(w)) for w in wholes])  # right padding: causal, harmless
        with torch.no_grad():
            logp = model(batch).logits.log_softmax(-1)
        scores = [sum(logp[c, i - 1, w[i]].item() for i in range(len(ctx), len(w))) for c, w in enumerate(wholes)]
        pick = max(range(3), key=scores.__getitem__)
        picked[CHOICES[pick]] += 1
        correct += int(pick == doc["label"])
    return correct / len(docs), picked


@pytest.mark.parametrize("name", LOCAL_TASKS)
def test_scores_equal_an_independent_scoring(our_run, tiny_hf_model, bench_dir, name):
    summary, _ = our_run
    expected, picked = _independent_accuracy(tiny_hf_model, bench_dir / LOCAL_DATA[name])
    bench = summary["benchmarks"][name]
    assert bench["raw"] == pytest.approx(expected, abs=1e-9)
    # the answer distribution the demo report shows beside the chance level (one in three)
    assert bench["answers"]["predicted"] == picked and bench["chance"] == pytest.approx(100 / 3, abs=1e-3)
    assert sum(bench["answers"]["gold"].values()) == bench["n_samples"]


def test_offline_run_names_missing_local_copies(tiny_hf_model, tmp_path, capsys):
    code = midm_main(["eval", "--model", str(tiny_hf_model), "--tasks", "kmmlu", "--data-dir", str(tmp_path),
                     "--output", str(tmp_path / "r.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert "HAERAE-HUB/KMMLU" in err and "huggingface-cli download" in err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("tasks,message", [("no_such_task", "unknown benchmark"),
                                           ("ko_mtbench", "LLM judge"),
                                           ("mbpp_plus", "--allow-code-execution")])
def test_bad_task_lists_fail_clearly(tiny_hf_model, tmp_path, capsys, tasks, message):
    assert midm_main(["eval", "--model", str(tiny_hf_model), "--tasks", tasks, "--output", str(tmp_path / "r.json")]) == 2
    assert message in capsys.readouterr().err


def test_not_a_model_dir(tmp_path, capsys):
    assert midm_main(["eval", "--model", str(tmp_path), "--tasks", "klue_nli_mc"]) == 2
    assert "midm convert to-hf" in capsys.readouterr().err
    (tmp_path / "config.json").write_text("{}")  # weights without a tokenizer: lm-eval could not run
    assert midm_main(["eval", "--model", str(tmp_path), "--tasks", "klue_nli_mc"]) == 2
    assert "--tokenizer" in capsys.readouterr().err


def test_registry_matches_lm_eval_task_configs():
    """Every runnable benchmark's tasks exist in lm-eval and report the metric/filter we read."""
    runnable = [b for b in registry.BENCHMARKS.values() if not b.requires_judge]
    manager = runner.build_task_manager(runnable)
    runner.validate(manager, runnable)
    assert len(runner.leaf_configs(manager, "kmmlu")) == 45
    broken = registry.Benchmark("x", "X", ("gsm8k",), 5, "exact_match", "no-such-filter")
    with pytest.raises(runner.EvalError, match="no-such-filter"):
        runner.validate(manager, [broken])


def test_list_prints_every_benchmark(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in registry.BENCHMARKS)


def test_ko_winogrande_task_runs_offline(tiny_hf_model, tmp_path, monkeypatch):
    """Our WinoGrande-style YAML (python helpers, 5-shot from train) on a handwritten local copy."""
    hub = tmp_path / "data" / registry.BENCHMARKS["ko_winogrande"].hub_datasets[0]
    rows = [{"sentence": f"철수는 영희에게 책을 빌려주었다. 그래서 _ 는 {i}일 동안 책을 읽었다.",
             "option1": "철수", "option2": "영희", "answer": str(1 + i % 2)} for i in range(10)]
    for split, part in (("train", rows[:6]), ("validation", rows[6:])):
        (hub / "data").mkdir(parents=True, exist_ok=True)
        (hub / "data" / f"{split}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part))
    (hub / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
                                   "    path: data/train.jsonl\n  - split: validation\n    path: data/validation.jsonl\n---\n")
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):  # the runner sets them; restore afterwards
        monkeypatch.setenv(var, "0")
    summary = runner.run(tiny_hf_model, registry.resolve(["ko_winogrande"]), data_dir=tmp_path / "data",
                         dtype="float32", bootstrap_iters=0)
    result = summary["benchmarks"]["ko_winogrande"]
    assert result["n_samples"] == 4 and result["num_fewshot"] == 5 and 0.0 <= result["raw"] <= 1.0
