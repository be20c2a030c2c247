"""What each Slurm stage runs: its ``midm`` command line, resources and stage-only flags.

Three shapes of job cover the lineage:

* ``distributed`` — pretrain, cpt (continued pretraining after depth-up scaling), distill, sft and
  dpo: many nodes, one rank per GPU (or torchrun per node), signal handling and self-requeue.
* ``single`` — prune, convert, eval: one task on one node (its GPUs visible to that task).
* ``data`` — tokenize: CPU work, one task per array element when ``--array`` is given, with
  ``{shard}`` in paths standing for the element's index.
* ``chain`` — filter: one CPU job per step of the filter pipeline, each an array of ``--array N``
  tasks over the whole input, submitted with ``--dependency=afterok`` on the step before it, so
  dedup and the quality cut are global (:mod:`slurm.chain`).

Commands are lists of words; :mod:`slurm.quoting` quotes them, so nothing here builds shell text.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from data_prep.docio.sources import FORMATS  # the input formats of `midm data filter/tokenize`
from slurm.quoting import RenderError, Word


@dataclass(frozen=True)
class StageArg:
    """A flag only this stage takes (``--checkpoint``, ``--tasks`` …)."""

    flag: str
    help: str
    required: bool = False
    is_path: bool = True  # relative paths are made absolute against the submit directory
    choices: tuple[str, ...] | None = None  # argparse choices (checked when the script is rendered)
    requires: tuple[str, str] | None = None  # (flag dest, value) this flag only goes with


@dataclass
class StageContext:
    """Everything a stage needs to build its command, already resolved and validated."""

    recipe_name: str
    recipe: object  # recipes.Recipe (typed loosely so this module stays importable without recipes)
    overrides: list[str]  # user --set values followed by the ones rendering derived (paths)
    user_overrides: list[str]
    run_dir: Path
    checkpoint_dir: Path
    args: dict[str, Word]  # stage flags by dest name, as shell words (may reference {shard})
    extra: dict[str, object] = field(default_factory=dict)

    def sets(self, user_only: bool = False) -> list[Word]:
        out: list[Word] = []
        for assignment in self.user_overrides if user_only else self.overrides:
            out += ["--set", assignment]
        return out

    def arg(self, name: str, default: Word | None = None) -> Word:
        value = self.args.get(name)
        if value is None:
            if default is None:
                raise RenderError(f"--{name.replace('_', '-')} is required for this stage")
            return default
        return value


@dataclass(frozen=True)
class Stage:
    name: str
    kind: str  # "distributed" | "single" | "data" | "chain"
    summary: str
    command: Callable[[StageContext], list[Word]]  # argv after `python -m midm`
    args: tuple[StageArg, ...] = ()
    default_gpus_per_node: int = 8
    # Extra words to set on the recipe before the trainer sees it (e.g. checkpoint.load after DuS).
    derived_overrides: Callable[[StageContext], list[str]] | None = None
    # Checks of the stage flags' values as given (before paths are resolved); raises RenderError.
    check: Callable[[dict[str, str | None]], None] | None = None


def _train(ctx: StageContext) -> list[Word]:
    return ["train", "--recipe", ctx.recipe_name, *ctx.sets(), "--resume", "auto"]


def _cpt_overrides(ctx: StageContext) -> list[str]:
    # After depth-up scaling the trainer starts from the DuS output (model only, fresh optimizer);
    # once the run has its own checkpoint, `--resume auto` takes precedence over checkpoint.load.
    if ctx.args.get("dus_from") is None:
        return []
    return [f"checkpoint.load={ctx.extra['dus_output']}"]


def _distill(ctx: StageContext) -> list[Word]:
    load = getattr(ctx.recipe.checkpoint, "load", None)  # type: ignore[attr-defined]
    student = ctx.arg("student", load)
    return ["distill", "--recipe", ctx.recipe_name, *ctx.sets(), "--teacher", ctx.arg("teacher"),
            "--student", student, "--resume", "auto"]


def _sft(ctx: StageContext) -> list[Word]:
    argv: list[Word] = ["sft", "--recipe", ctx.recipe_name, *ctx.sets()]
    for name in ("data", "base"):
        if ctx.args.get(name) is not None:
            argv += [f"--{name}", ctx.args[name]]
    return argv + ["--resume", "auto"]


def _dpo(ctx: StageContext) -> list[Word]:
    # The policy starts from the recipe's checkpoint.load (default in `midm dpo`: the reference);
    # a requeued job resumes from its own checkpoint.dir first.
    data: list[Word] = ["--data", ctx.args["data"]] if ctx.args.get("data") is not None else []
    return ["dpo", "--recipe", ctx.recipe_name, *ctx.sets(), "--reference", ctx.arg("reference"), *data,
            "--resume", "auto"]


def _prune(ctx: StageContext) -> list[Word]:
    # The target geometry comes from the recipe being pruned *to* (e.g. midm_mini: 1792 / 4608).
    model = ctx.recipe.model  # type: ignore[attr-defined]
    argv: list[Word] = ["prune", "--checkpoint", ctx.arg("checkpoint"),
                        "--output", ctx.arg("output", str(ctx.run_dir / "pruned")),
                        "--recipe", ctx.recipe_name, *ctx.sets(user_only=True),
                        "--hidden", str(model.hidden_size), "--ffn", str(model.ffn_hidden_size),
                        "--calib", ctx.arg("calib")]
    if ctx.args.get("layers") is not None:
        argv += ["--layers", ctx.args["layers"]]
    return argv


def _convert(ctx: StageContext) -> list[Word]:
    argv: list[Word] = ["convert", "to-hf", "--checkpoint", ctx.arg("checkpoint", str(ctx.checkpoint_dir)),
                        "--output", ctx.arg("output", str(ctx.run_dir / "hf"))]
    if ctx.args.get("tokenizer") is not None:
        argv += ["--tokenizer", ctx.args["tokenizer"]]
    return argv


def _eval(ctx: StageContext) -> list[Word]:
    judge = (["--judge", ctx.arg("judge"), "--judge-model", ctx.arg("judge_model")]
             if ctx.args.get("judge") is not None else [])
    return ["eval", "--model", ctx.arg("model", str(ctx.run_dir / "hf")), "--tasks", ctx.arg("tasks"),
            "--output", ctx.arg("output", str(ctx.run_dir / "eval" / "results.json")), *judge]


def _check_eval(args: dict[str, str | None]) -> None:
    """``--tasks`` names benchmarks of ``evaluation.registry`` (the list ``midm eval list`` prints);
    judge-scored ones need ``--judge URL --judge-model NAME`` (passed on to ``midm eval``).

    Raises RenderError on an unknown name, a judge-scored benchmark without a judge, or one of the two
    judge flags without the other.
    """
    from evaluation.registry import UnknownBenchmark, resolve

    names = [t.strip() for t in str(args.get("tasks") or "").split(",") if t.strip()]
    if not names:
        raise RenderError("--tasks is empty; give comma-separated benchmark names (midm eval list)")
    if (args.get("judge") is None) != (args.get("judge_model") is None):
        raise RenderError("--judge URL and --judge-model NAME go together")
    try:
        resolve(names, judge=args.get("judge") is not None)
    except UnknownBenchmark as err:
        raise RenderError(f"--tasks: {err}") from None


def _workers(ctx: StageContext) -> list[Word]:
    # Local workers = the CPUs Slurm gave this task (the tools would otherwise count the whole node's).
    return ["--workers", str(ctx.extra.get("cpus_per_task") or 1)]


def _data_filter(ctx: StageContext) -> list[Word]:
    # slurm.chain appends --tasks N --step S --rank R: each array task runs one rank of one step
    argv: list[Word] = ["data", "filter", ctx.arg("input"), ctx.arg("output")]
    for name in ("stages", "config", "format", "hub_config", "hub_split"):
        if ctx.args.get(name) is not None:
            argv += ["--" + name.replace("_", "-"), ctx.args[name]]
    return argv


def _data_tokenize(ctx: StageContext) -> list[Word]:
    fmt = ["--format", ctx.args["format"]] if ctx.args.get("format") is not None else []
    return ["data", "tokenize", ctx.arg("input"), ctx.arg("output"), "--tokenizer", ctx.arg("tokenizer"),
            *fmt, *_workers(ctx)]


_OUT = "output directory (default: under the run directory)"

STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("pretrain", "distributed", "pretrain a recipe from scratch (requeues itself on time limits)", _train),
    Stage("cpt", "distributed",
          "continued pretraining, optionally after depth-up scaling (`midm dus`) a parent checkpoint",
          _train,
          args=(StageArg("--dus-from", "parent checkpoint to depth-up scale first (e.g. the 8B's); omit to "
                         "continue from the recipe's checkpoint.load"),
                StageArg("--dus-map", "layer map for `midm dus` (default solar:8)", is_path=False)),
          derived_overrides=_cpt_overrides),
    Stage("distill", "distributed", "logit distillation of a pruned student from its teacher", _distill,
          args=(StageArg("--teacher", "teacher checkpoint", required=True),
                StageArg("--student", "student checkpoint (default: the recipe's checkpoint.load)"))),
    Stage("sft", "distributed", "supervised fine-tuning of a base checkpoint on `midm data sft` output", _sft,
          args=(StageArg("--data", "`midm data sft` output (default: the recipe's sft.dataset)"),
                StageArg("--base", "base checkpoint (default: the recipe's checkpoint.load)"))),
    Stage("dpo", "distributed", "preference tuning (DPO) of an SFT checkpoint against it, frozen", _dpo,
          args=(StageArg("--reference", "frozen reference checkpoint (the SFT model); also the policy's "
                         "initial weights unless the recipe sets checkpoint.load", required=True),
                StageArg("--data", "`midm data prefs` output (default: the recipe's dpo.dataset)"))),
    Stage("prune", "single", "Minitron width pruning to the recipe's hidden/FFN sizes", _prune,
          args=(StageArg("--checkpoint", "checkpoint to prune", required=True), StageArg("--output", _OUT),
                StageArg("--calib", "calibration data prefix (.bin/.idx without extension)", required=True),
                StageArg("--layers", "target number of layers (depth pruning)", is_path=False))),
    Stage("convert", "single", "convert the run's checkpoint to a Hugging Face directory", _convert,
          args=(StageArg("--checkpoint", "checkpoint (default: the recipe's checkpoint.dir)"),
                StageArg("--output", _OUT), StageArg("--tokenizer", "HF tokenizer directory to export with it"))),
    Stage("eval", "single", "lm-evaluation-harness on a Hugging Face directory", _eval,
          args=(StageArg("--model", "HF directory (default: <run dir>/hf)"),
                StageArg("--tasks", "comma-separated task list", required=True, is_path=False),
                StageArg("--output", "results JSON (default: <run dir>/eval/results.json)"),
                StageArg("--judge", "OpenAI-compatible judge URL (LogicKor, Ko-MT-Bench)", is_path=False),
                StageArg("--judge-model", "the judge's model name", is_path=False)),
          default_gpus_per_node=1, check=_check_eval),
    Stage("data-filter", "chain", "filter raw text: one dependent job per pipeline step, each an array of "
          "--array N tasks over all the input (global dedup and quality cut)", _data_filter,
          args=(StageArg("--input", "input file or directory (all of it: every step sees every shard)", required=True),
                StageArg("--output", "output directory", required=True),
                StageArg("--stages", "comma-separated filter stages", is_path=False),
                StageArg("--config", "filter config YAML deep-merged over data_prep/configs/filter.yaml"),
                StageArg("--format", "input format, as `midm data filter --format` (default auto: by extension, "
                         "else the first bytes; hub: --input is a Hub dataset id, kept as given)", is_path=False,
                         choices=FORMATS),
                StageArg("--hub-config", "with --format hub: dataset config (e.g. kor_Hang)", is_path=False,
                         requires=("format", "hub")),
                StageArg("--hub-split", "with --format hub: split (default train)", is_path=False,
                         requires=("format", "hub"))),
          default_gpus_per_node=0),
    Stage("data-tokenize", "data", "tokenize into Megatron .bin/.idx (one shard per array task)", _data_tokenize,
          args=(StageArg("--input", "input path; {shard} or {shard:05d} = the array index", required=True),
                StageArg("--output", "output prefix; may contain {shard}", required=True),
                StageArg("--tokenizer", "tokenizer directory", required=True),
                StageArg("--format", "input format, as `midm data tokenize --format` (default auto; a Hub "
                         "dataset: `midm data tokenize --format hub` in one job, it is split by --workers)",
                         is_path=False, choices=tuple(f for f in FORMATS if f != "hub"))),
          default_gpus_per_node=0),
)}


def dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")
