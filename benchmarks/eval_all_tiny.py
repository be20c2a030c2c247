"""Every benchmark `midm eval` can run offline, on tiny HF Llamas, with wall time per benchmark.

Writes local copies in each dataset's public Hub layout and schema (configs, splits, fields as the
lm-eval task YAMLs read them; a few synthetic Korean rows each — KMMLU's 45 subjects, HAE-RAE's 5
sets, KoBEST's 5 tasks, HRM8K's 5 sets, Ko-Winogrande, GSM8K, IFEval — plus the committed samples of
KLUE-NLI, KorNLI, IFEval-Ko, LogicKor and KoMT-Bench), builds a tiny *instruct* Llama (chat template,
so the default applies it) and a tiny judge served by ``evaluation.judge.serve`` on 127.0.0.1, then
runs each benchmark through ``evaluation.runner.run`` (HF backend, CPU, float32) one at a time.
Generation is capped (``--max-gen-toks``, recorded in the results). Scores are chance-level: this
measures the pipeline. Prints one JSON line.

    python benchmarks/eval_all_tiny.py [--max-gen-toks 32] [--threads 1]

Not run: BBH, GPQA, MuSR, MBPP+, MMLU-Pro, MMLU (English, no local copies written here).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SAMPLES = REPO / "tests" / "data" / "evaluation" / "benchmarks"
LM_EVAL_TASKS = None  # set in main (lm_eval.tasks folder)


def _write(root: Path, hub: str, configs: dict[str, dict[str, list[dict]]]) -> None:
    """DIR/hub/README.md declaring every config and split + one JSONL per (config, split)."""
    lines = ["---", "configs:"]
    for config, splits in configs.items():
        lines += [f"- config_name: {config}", "  data_files:"]
        for split, rows in splits.items():
            path = root / hub / config / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            lines += [f"  - split: {split}", f"    path: {config}/{split}.jsonl"]
    (root / hub / "README.md").write_text("\n".join(lines + ["---", ""]), encoding="utf-8")


def _names(folder: str, prefix: str) -> list[str]:
    """dataset_name of every leaf task YAML in an lm-eval task folder (the Hub configs it reads)."""
    out = []
    for path in sorted((LM_EVAL_TASKS / folder).glob(f"{prefix}*.yaml")):
        match = re.search(r"^dataset_name:\s*(\S+)\s*$", path.read_text(), flags=re.M)
        if match:
            out.append(match.group(1).strip("'\""))
    return out


def write_copies(root: Path, n: int = 4) -> dict[str, int]:
    q = ["대한민국의 수도는 어디인가?", "물의 끓는점은 몇 도인가?", "훈민정음을 만든 왕은 누구인가?", "가장 큰 행성은?"]
    kmmlu = {s: {split: [{"question": q[i % 4], "A": "서울", "B": "부산", "C": "대구", "D": "광주", "answer": 1 + i % 4,
                          "Category": s, "Human Accuracy": 0.5} for i in range(n)] for split in ("dev", "test")}
             for s in _names("kmmlu/default", "kmmlu_")}
    _write(root, "HAERAE-HUB/KMMLU", kmmlu)
    haerae = {c: {"test": [{"query": f"다음 중 옳은 것은? {q[i % 4]}\n(A) 가\n(B) 나\n(C) 다\n(D) 라\n(E) 마",
                            "answer": "(" + "ABCDE"[i % 5] + ")"} for i in range(n)]}
              for c in _names("haerae", "haerae_")}
    _write(root, "HAERAE-HUB/HAE_RAE_BENCH", haerae)
    splits = ("train", "validation", "test")
    kobest = {
        "boolq": {s: [{"paragraph": "세종대왕은 조선의 네 번째 왕이다.", "question": "세종대왕은 조선의 왕인가?",
                       "label": i % 2} for i in range(n)] for s in splits},
        "copa": {s: [{"premise": "물을 오래 끓였다.", "question": ("원인", "결과")[i % 2], "alternative_1": "물의 양이 늘었다.",
                      "alternative_2": "물의 양이 줄었다.", "label": i % 2} for i in range(n)] for s in splits},
        "hellaswag": {s: [{"context": "아이가 공을 던졌다.", "ending_1": "공이 날아갔다.", "ending_2": "비가 왔다.",
                           "ending_3": "책을 읽었다.", "ending_4": "밥을 먹었다.", "label": i % 4} for i in range(n)]
                      for s in splits},
        "sentineg": {s: [{"sentence": ("정말 좋은 영화였다.", "다시는 보고 싶지 않다.")[i % 2], "label": 1 - i % 2}
                         for i in range(n)] for s in splits},
        "wic": {s: [{"word": "배", "context_1": "배가 고프다.", "context_2": ("배를 타고 갔다.", "배가 아프다.")[i % 2],
                     "label": i % 2} for i in range(n)] for s in splits},
    }
    _write(root, "skt/kobest_v1", kobest)
    hrm8k = {c: {"test": [{"question": f"{i} 더하기 {i}은 얼마인가?", "answer": 2 * i} for i in range(n)]}
             for c in _names("hrm8k/default", "hrm8k_")}
    _write(root, "HAERAE-HUB/HRM8K", hrm8k)
    wino = [{"sentence": f"철수는 영희에게 책을 빌려주었다. 그래서 _ 는 {i}일 동안 책을 읽었다.", "option1": "철수",
             "option2": "영희", "answer": str(1 + i % 2)} for i in range(n + 10)]
    _write(root, "HAERAE-HUB/KoWinogrande", {"default": {"train": wino[:10], "validation": wino[10:]}})
    gsm = [{"question": f"Tom has {i} apples and buys {i} more. How many apples does he have?",
            "answer": f"He has {i} + {i} = {2 * i} apples.\n#### {2 * i}"} for i in range(n + 10)]
    _write(root, "openai/gsm8k", {"main": {"train": gsm[:10], "test": gsm[10:]}})
    ifeval = [{"key": i, "prompt": "Write a short poem about spring. Do not use any commas.",
               "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}]} for i in range(n)]
    _write(root, "google/IFEval", {"default": {"train": ifeval}})
    for hub in ("klue/klue", "kakaobrain/kor_nli", "allganize/IFEval-Ko", "maywell/LogicKor", "LGAI-EXAONE/KoMT-Bench"):
        shutil.copytree(SAMPLES / hub, root / hub)
    return {"kmmlu_subjects": len(kmmlu), "haerae_sets": len(haerae), "hrm8k_sets": len(hrm8k)}


def main() -> None:
    global LM_EVAL_TASKS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-gen-toks", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import lm_eval.tasks
    import torch

    torch.set_num_threads(args.threads)
    LM_EVAL_TASKS = Path(lm_eval.tasks.__file__).resolve().parent
    from evaluation import registry, runner
    from evaluation.judge import serve
    from evaluation.judge.client import JudgeConfig
    from evaluation.tiny_models import build_tiny_judge, build_tiny_llama

    names = ["klue_nli_mc", "kornli_mc", "haerae", "kmmlu", "kobest_comprehension", "kobest_reasoning",
             "ko_winogrande", "hrm8k", "ko_ifeval", "logickor", "ko_mtbench", "ifeval", "gsm8k"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        layout = write_copies(tmp / "data")
        texts = [line for p in (tmp / "data").rglob("*.jsonl") for line in p.read_text(encoding="utf-8").splitlines()]
        t0 = time.time()
        model = build_tiny_llama(tmp / "model", texts, vocab=2000, chat=True, hidden=64, layers=2,
                                 max_positions=2048)
        judge_dir = build_tiny_judge(tmp / "judge")
        build_s = time.time() - t0
        server, state = serve.serve(judge_dir, name="tiny-judge", default_max_tokens=24)
        judge = JudgeConfig(url=f"http://127.0.0.1:{server.server_address[1]}", model="tiny-judge",
                            backoff_s=0.1, cache=tmp / "judge_cache.jsonl")
        per, scores, samples, judge_stats = {}, {}, {}, {}
        try:
            for name in names:
                started = time.time()
                summary = runner.run(model, registry.resolve([name], judge=True), data_dir=tmp / "data",
                                     output=tmp / "out" / f"{name}.json", dtype="float32", bootstrap_iters=0,
                                     max_gen_toks=args.max_gen_toks, judge=judge)
                per[name] = round(time.time() - started, 2)
                result = summary["benchmarks"][name]
                scores[name] = result["score"]
                samples[name] = result["n_samples"]
                if "judge" in summary:
                    judge_stats[name] = {k: summary["judge"][k] for k in
                                         ("requests", "cached", "round_trip_s_mean", "round_trip_s_p50")}
                    judge_stats[name]["unparseable"] = result["n_unparseable"]
            rerun = runner.run(model, registry.resolve(["logickor"], judge=True), data_dir=tmp / "data",
                               dtype="float32", max_gen_toks=args.max_gen_toks, judge=judge)
        finally:
            server.shutdown()
    os.environ.pop("HF_HUB_OFFLINE", None)
    print(json.dumps({
        "benchmark": "eval_all_tiny", "backend": "hf", "device": "cpu", "torch_threads": args.threads,
        "model": "random tiny Llama (2 layers, hidden 64, BPE 2000, chat template)",
        "max_gen_toks": args.max_gen_toks, "local_copies": layout, "build_models_s": round(build_s, 2),
        "wall_s_per_benchmark": per, "n_samples": samples, "scores": scores, "judge": judge_stats,
        "judge_requests_on_rerun": rerun["judge"]["requests"], "judge_cached_on_rerun": rerun["judge"]["cached"],
        "judge_server_requests_total": len(state.requests),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()
