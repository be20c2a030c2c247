"""The one place where every benchmark's lm-eval task, shot count and metric are written down.

The Mi:dm 2.0 model card reports each benchmark as one number; lm-eval reports per task (and
per group) under a ``"<metric>,<filter>"`` key. A :class:`Benchmark` pins down which lm-eval
tasks make that number, with how many shots, and which metric/filter key is read, so that a
score in our results file is never ambiguous. Aggregation over several lm-eval tasks is the
mean of their leaf tasks, *micro* (size-weighted, lm-eval's ``weight_by_size``) or *macro*
(each subject/task once); both are written to the results file, ``aggregation`` names the one
the benchmark's paper uses, which becomes the score and the table's number.

Shot counts follow the paper where it says so (KMMLU zero-shot) and otherwise the task's
standard lm-eval / Open-LLM-Leaderboard setting; each entry's ``note`` says which.
Importing this module is cheap (no lm-eval, no torch): ``midm eval list`` uses it directly.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from midm.errors import MidmError

TASKS_DIR = Path(__file__).resolve().parent / "tasks"  # our own lm-eval task YAMLs (--include_path)


@dataclass(frozen=True)
class Benchmark:
    name: str                      # our key, used on the command line and in results files
    title: str                     # the model card's column name
    lm_eval_tasks: tuple[str, ...]  # lm-eval task or group names that make up the score
    num_fewshot: int
    metric: str                    # lm-eval metric name, e.g. "acc", "exact_match"
    filter: str = "none"           # lm-eval filter name; results key is f"{metric},{filter}"
    language: str = "ko"
    hub_datasets: tuple[str, ...] = ()  # Hub dataset ids read online (mirrored under --data-dir offline)
    scale: float = 100.0           # multiply lm-eval's [0,1] value by this for the card's scale
    local: bool = False            # task YAML shipped in evaluation/tasks (not built into lm-eval)
    requires_judge: bool = False   # scored by an LLM judge: runs with --judge URL --judge-model NAME
    unsafe_code: bool = False      # executes model-written code (lm-eval asks for confirmation)
    note: str = ""
    # folders of lm-eval's own tasks/ that define lm_eval_tasks: indexing only these instead of all
    # ~15k built-in task YAMLs saves ~10 s per run (the full index is the fallback)
    lm_eval_dirs: tuple[str, ...] = ()
    aggregation: str = "micro"     # over leaf tasks: "micro" (size-weighted) or "macro" (unweighted)
    aggregation_source: str = ""   # who says so (paper, report), shown in the table's footnote

    @property
    def results_key(self) -> str:
        return f"{self.metric},{self.filter}"


_B = Benchmark
BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in [
    # ---- Korean, public (model card: Korean tables) ----
    _B("haerae", "HAERAE", ("haerae",), 0, "acc", hub_datasets=("HAERAE-HUB/HAE_RAE_BENCH",),
       lm_eval_dirs=("haerae",), aggregation="micro",
       aggregation_source="HAE-RAE Bench reports per-task accuracy; lm-eval's haerae group pools the 5 "
                          "tasks by size (weight_by_size), which we follow",
       note="lm-eval group haerae (5 subsets), zero-shot, acc"),
    _B("kmmlu", "KMMLU", ("kmmlu",), 0, "acc", hub_datasets=("HAERAE-HUB/KMMLU",),
       lm_eval_dirs=("kmmlu/default",), aggregation="macro",
       aggregation_source="KMMLU paper: macro average over the 45 subjects (lm-eval's kmmlu README: "
                          "'to replicate the paper, take the macro average')",
       note="paper reports zero-shot KMMLU; lm-eval group kmmlu (45 subjects), acc"),
    _B("kobest_comprehension", "Ko-Best", ("kobest_boolq", "kobest_sentineg", "kobest_wic"), 0, "acc",
       hub_datasets=("skt/kobest_v1",),
       lm_eval_dirs=("kobest",), aggregation="macro",
       aggregation_source="KoBEST paper reports each task; a KoBEST average is the mean of task scores",
       note="card's Comprehension Ko-Best column; our split of KoBEST: BoolQ, SentiNeg, WiC"),
    _B("kobest_reasoning", "Ko-Best", ("kobest_copa", "kobest_hellaswag"), 0, "acc",
       hub_datasets=("skt/kobest_v1",),
       lm_eval_dirs=("kobest",), aggregation="macro",
       aggregation_source="KoBEST paper reports each task; a KoBEST average is the mean of task scores",
       note="card's Reasoning Ko-Best column; our split of KoBEST: COPA, HellaSwag"),
    _B("ko_winogrande", "Ko-Winogrande", ("ko_winogrande",), 5, "acc", local=True,
       hub_datasets=("HAERAE-HUB/KoWinogrande",),
       note="WinoGrande-style partial scoring (evaluation/tasks/ko_winogrande.yaml), 5-shot as the "
            "Open LLM Leaderboard runs WinoGrande; the Hub id is our assumption (not verified offline): "
            "set dataset_path in that YAML to your copy"),
    _B("hrm8k", "HRM8K", ("hrm8k",), 0, "exact_match", hub_datasets=("HAERAE-HUB/HRM8K",),
       lm_eval_dirs=("hrm8k/default",),
       note="lm-eval group hrm8k (GSM8K, KSM, MATH, MMMLU, OMNI_MATH), zero-shot generative"),
    _B("ko_ifeval", "Ko-IFEval", ("ko_ifeval",), 0, "prompt_level_strict_acc", local=True,
       hub_datasets=("allganize/IFEval-Ko",),
       note="IFEval-Ko (allganize, Apache-2.0) with IFEval's checkers adapted for Korean "
            "(evaluation/ko_ifeval), prompt-level strict accuracy as the English IFEval column"),
    _B("ko_mtbench", "Ko-MTBench", (), 0, "judge_score", requires_judge=True, scale=10.0,
       hub_datasets=("LGAI-EXAONE/KoMT-Bench",),
       note="KoMT-Bench, FastChat single grading with the Korean judge prompts, 1-10 (x10 on the card), "
            "square-root penalty for non-Korean answers (KoMT-Bench default)"),
    _B("logickor", "LogicKor", (), 0, "judge_score", requires_judge=True, scale=1.0,
       hub_datasets=("maywell/LogicKor",),
       note="LogicKor judge prompt, (single-turn + multi-turn)/2 on 0-10 as published"),
    # ---- English (model card: English table) ----
    _B("ifeval", "IFEval", ("ifeval",), 0, "prompt_level_strict_acc", language="en",
       hub_datasets=("google/IFEval",), lm_eval_dirs=("ifeval",),
       note="lm-eval ifeval, prompt-level strict accuracy"),
    _B("bbh", "BBH", ("bbh_cot_fewshot",), 3, "exact_match", "get-answer", language="en",
       hub_datasets=("SaylorTwift/bbh",), lm_eval_dirs=("bbh/cot_fewshot",),
       note="3-shot chain-of-thought, exact match on the extracted answer"),
    _B("gpqa", "GPQA", ("leaderboard_gpqa_diamond",), 0, "acc_norm", language="en",
       hub_datasets=("Idavidrein/gpqa",), lm_eval_dirs=("leaderboard/gpqa",),
       note="Open LLM Leaderboard v2 setting (diamond, acc_norm)"),
    _B("musr", "MuSR", ("leaderboard_musr",), 0, "acc_norm", language="en",
       hub_datasets=("TAUR-Lab/MuSR",), lm_eval_dirs=("leaderboard/musr",),
       note="Open LLM Leaderboard v2 setting"),
    _B("gsm8k", "GSM8K", ("gsm8k",), 5, "exact_match", "strict-match", language="en",
       hub_datasets=("openai/gsm8k",), lm_eval_dirs=("gsm8k",),
       note="5-shot, strict '#### N' answer match"),
    _B("mbpp_plus", "MBPP+", ("mbpp_plus",), 3, "pass_at_1", language="en", unsafe_code=True,
       hub_datasets=("evalplus/mbppplus",), lm_eval_dirs=("mbpp",),
       note="3-shot; runs generated code (needs --allow-code-execution)"),
    _B("mmlu_pro", "MMLU-pro", ("mmlu_pro",), 5, "exact_match", "custom-extract", language="en",
       hub_datasets=("TIGER-Lab/MMLU-Pro",), lm_eval_dirs=("mmlu_pro",),
       note="5-shot chain-of-thought, extracted letter"),
    _B("mmlu", "MMLU", ("mmlu",), 5, "acc", language="en", hub_datasets=("cais/mmlu",),
       lm_eval_dirs=("mmlu/default",),
       note="5-shot, acc (size-weighted over 57 subjects)"),
    # ---- Korean multiple-choice sets shipped for offline runs (not on the model card) ----
    _B("klue_nli_mc", "KLUE-NLI", ("klue_nli_mc",), 0, "acc", local=True, hub_datasets=("klue/klue",),
       note="KLUE NLI dev as 3-way multiple choice (evaluation/tasks/klue_nli_mc.yaml)"),
    _B("kornli_mc", "KorNLI", ("kornli_mc",), 0, "acc", local=True, hub_datasets=("kakaobrain/kor_nli",),
       note="KorNLI (XNLI-ko) dev as 3-way multiple choice (evaluation/tasks/kornli_mc.yaml)"),
]}


class UnknownBenchmark(MidmError):
    """A benchmark name not in the registry, or a judge benchmark without a judge."""


def resolve(names: list[str], *, judge: bool = False) -> list[Benchmark]:
    """Look benchmarks up by name; unknown names, or judge-scored ones without ``judge``, fail
    with what to do."""
    out: list[Benchmark] = []
    for name in names:
        bench = BENCHMARKS.get(name)
        if bench is None:
            raise UnknownBenchmark(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}"
                                   " (see `midm eval list`)")
        if bench.requires_judge and not judge:
            raise UnknownBenchmark(f"{name} ({bench.title}) is scored by an LLM judge: pass --judge URL "
                                   "--judge-model NAME (any OpenAI-compatible endpoint)")
        out.append(bench)
    return out
