"""The demo's stages: each runs real ``midm`` sub-commands and returns a JSON-able summary."""
from __future__ import annotations

import gzip
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from data_prep.docio.inputs import expand_inputs
from data_prep.docio.records import is_gzip, iter_lines, parse_record
from data_prep.hangul import script_language
from data_prep.accounting import STATS_FILE
from megatron_ext.run_files import PRUNE_SUMMARY_FILE, read_curve
from midm.runs import run_midm
from tokenizer.api import META_FILE


@dataclass(frozen=True)
class Family:
    """Recipe names of one lineage; every geometry (incl. the prune targets) comes from the recipes."""

    parent: str
    deep: str
    mini: str
    dus_map: str


@dataclass
class DemoContext:
    out: Path
    data: str
    family: Family
    steps: int
    continue_steps: int
    vocab_size: int
    eval_data: str
    eval_limit: int | None
    overrides: list[str] = field(default_factory=list)
    sft_epochs: float = 1.0
    chat_prompts: int = 24

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    @property
    def tokens_prefix(self) -> Path:
        return self.path("tokens", "corpus")

    def run_dir(self, name: str) -> Path:
        return self.path("runs", name)


def run(ctx: DemoContext, label: str, log_name: str, args: list[str], show: Callable[[str], bool] | None = None) -> None:
    """Run ``midm ARGS`` streaming its output to ``OUT/logs/LOG_NAME.log``; echo progress lines; raise on failure."""
    run_midm(args, ctx.path("logs", f"{log_name}.log"), show=show, prefix=f"{label} ")


def _every(n: int) -> Callable[[str], bool]:
    def show(line: str) -> bool:
        if not line.startswith("step "):
            return "val_loss" in line or "error" in line.lower()
        try:
            step = int(line.split()[1])
        except (IndexError, ValueError):
            return False
        return step % n == 0 or "val_loss" in line
    return show


def _all_tasks_completed(line: str) -> bool:
    """datatrove logs 'k/n tasks completed' per task; echo only each finished step of the pipeline."""
    if "tasks completed" not in line:
        return False
    done, _, total = line.split(" - ")[-1].split()[0].partition("/")
    return done == total


def _input_data(ctx: DemoContext) -> str:
    """A local path, or a Hub dataset id materialised as JSONL (online only)."""
    if Path(ctx.data).exists():
        return str(Path(ctx.data).resolve())
    target = ctx.path("input", "hub.jsonl.gz")
    if not target.exists():
        try:
            from datasets import load_dataset

            dataset = load_dataset(ctx.data, split="train", streaming=True)
        except Exception as err:
            raise RuntimeError(f"--data {ctx.data!r} is neither a local path nor a loadable Hub dataset ({err})") from err
        target.parent.mkdir(parents=True, exist_ok=True)
        with gzip.open(target, "wt", encoding="utf-8") as f:
            for i, row in enumerate(dataset):
                if i >= 20_000:
                    break
                f.write(json.dumps({"id": row.get("id", i), "text": row["text"]}, ensure_ascii=False) + "\n")
    return str(target)


# ----------------------------------------------------------------------------------------- data
def stage_filter(ctx: DemoContext, label: str) -> dict:
    out = ctx.path("filtered")
    # --verbose: datatrove's log (also in OUT/filter.log) into the demo's log, whose step lines are echoed
    run(ctx, label, "filter", ["data", "filter", _input_data(ctx), str(out), "--fresh", "--keep-rejects", "--verbose"],
        show=_all_tasks_completed)
    stats = json.loads((out / STATS_FILE).read_text())
    return {"output": str(out), "stats": stats}


def stage_tokenizer(ctx: DemoContext, label: str) -> dict:
    """Train on the filtered corpus minus a held-out slice, then measure compression on that slice."""
    tok = ctx.path("tokenizer")
    heldout_files, heldout_ids = _heldout(ctx)
    train_input = ctx.path("heldout", "tokenizer_train.jsonl.gz")
    with gzip.open(train_input, "wt", encoding="utf-8") as out:
        for path in expand_inputs([ctx.path("filtered")]):  # the filter's kept shards (its manifest)
            with gzip.open(path, "rt", encoding="utf-8") as f:
                for line in f:
                    if str(json.loads(line).get("id")) not in heldout_ids:
                        out.write(line)
    # --overwrite: a re-run (--force) replaces the demo's own tokenizer; the tokenize stage after it re-runs too.
    run(ctx, label, "tokenizer", ["tokenizer", "train", "--input", str(train_input), "--vocab-size",
                                  str(ctx.vocab_size), "--output", str(tok), "--overwrite"])
    run(ctx, label, "tokenizer", ["tokenizer", "eval", "--tokenizer", str(tok), "--text", *heldout_files,
                                  "--output", str(tok / "eval")])
    meta = json.loads((tok / META_FILE).read_text())
    return {"tokenizer": str(tok), "meta": {k: meta[k] for k in ("vocab_size", "padded_vocab_size") if k in meta},
            "heldout_docs": len(heldout_ids), "eval": json.loads((tok / "eval" / "eval.json").read_text())}


def _heldout(ctx: DemoContext, per_language: int = 300) -> tuple[list[str], set[str]]:
    """The input's last documents per language (by Hangul share), kept out of tokenizer training."""
    source = Path(_input_data(ctx))
    files = sorted(source.rglob("*.jsonl*")) if source.is_dir() else [source]
    docs: dict[str, list[dict]] = {"korean": [], "english": []}
    for path in files:
        with open(path, "rb") as f:
            for i, raw in enumerate(iter_lines(f, gzip=is_gzip(path))):
                doc = parse_record(raw)[0] if raw else None
                if doc is None:  # a damaged record: the filter counts it; here it is simply not held out
                    continue
                text = doc["text"]
                lang = "korean" if script_language(text) == "ko" else "english"
                docs[lang].append({"id": str(doc.get("id", f"{path.name}:{i}")), "text": text})
    files_out, ids = [], set()
    ctx.path("heldout").mkdir(parents=True, exist_ok=True)
    for lang, items in docs.items():
        held = items[-per_language:]
        ids.update(d["id"] for d in held)
        path = ctx.path("heldout", f"{lang}.jsonl")
        path.write_text("".join(json.dumps({"text": d["text"]}, ensure_ascii=False) + "\n" for d in held))
        files_out.append(f"{lang}={path}")
    return files_out, ids


def stage_tokenize(ctx: DemoContext, label: str) -> dict:
    ctx.tokens_prefix.parent.mkdir(parents=True, exist_ok=True)
    run(ctx, label, "tokenize", ["data", "tokenize", str(ctx.path("filtered")), str(ctx.tokens_prefix),
                                 "--tokenizer", str(ctx.path("tokenizer"))])
    summary_file = Path(str(ctx.tokens_prefix) + ".summary.json")
    return json.loads(summary_file.read_text()) if summary_file.exists() else {"prefix": str(ctx.tokens_prefix)}


# ------------------------------------------------------------------------------------- training
def _vocab(ctx: DemoContext) -> int:
    meta = json.loads(ctx.path("tokenizer", META_FILE).read_text())
    return int(meta["padded_vocab_size"])


DEMO_BATCH = 8  # sequences per step of every demo training run


def _train_args(ctx: DemoContext, recipe: str, run_name: str, steps: int, *extra: str) -> list[str]:
    # Laptop-sized batches (8 × 128 tokens, one micro-batch) keep the whole demo within minutes on 2 cores.
    sets = [f"data.blend={ctx.tokens_prefix}", f"model.vocab_size={_vocab(ctx)}", f"logging.dir={ctx.path('runs')}",
            f"logging.run_name={run_name}", f"train.steps={steps}", f"train.eval_interval={max(steps // 6, 1)}",
            "train.eval_steps=2", f"train.global_batch_size={DEMO_BATCH}", f"train.micro_batch_size={DEMO_BATCH}",
            f"checkpoint.save_interval={steps}", "logging.tensorboard=false", *ctx.overrides, *extra]
    return [arg for item in sets for arg in ("--set", item)]


def _fresh(ctx: DemoContext, *run_names: str) -> None:
    """A (re-)run of a training stage starts its runs over: the demo owns OUT, and `midm train --resume none`
    refuses to start a run in a directory that holds an earlier one."""
    for name in run_names:
        shutil.rmtree(ctx.run_dir(name), ignore_errors=True)


def _curve(ctx: DemoContext, run_name: str, recipe: str) -> dict:
    """The run's loss curves (``read_curve``) plus ``tokens_per_step`` (sequences × sequence length), so the
    report can put runs compared at equal tokens on a token axis."""
    from recipes import get_recipe

    seq_length = get_recipe(recipe, list(ctx.overrides)).data.seq_length
    return {**read_curve(ctx.run_dir(run_name)), "recipe": recipe, "tokens_per_step": DEMO_BATCH * seq_length}


def stage_pretrain(ctx: DemoContext, label: str) -> dict:
    f = ctx.family
    _fresh(ctx, "parent")
    run(ctx, label, "pretrain", ["train", "--recipe", f.parent, "--resume", "none",
                                 *_train_args(ctx, f.parent, "parent", ctx.steps)], show=_every(20))
    return _curve(ctx, "parent", f.parent)


def stage_dus(ctx: DemoContext, label: str) -> dict:
    f = ctx.family
    out = ctx.path("checkpoints", "dus")
    run(ctx, label, "dus", ["dus", "--checkpoint", str(ctx.run_dir("parent") / "checkpoints"), "--output", str(out),
                            "--map", f.dus_map, "--recipe", f.deep, "--set", f"model.vocab_size={_vocab(ctx)}"])
    return {"checkpoint": str(out), "map": f.dus_map}


def stage_continued(ctx: DemoContext, label: str) -> dict:
    """Three arms on the same tokens: the DuS model trained on, the deep model from scratch, and the parent
    itself trained on (the baseline DuS must beat to be worth its extra depth)."""
    f = ctx.family
    dus = ctx.path("checkpoints", "dus")
    parent = ctx.run_dir("parent") / "checkpoints"
    _fresh(ctx, "deep_dus", "deep_scratch", "parent_continued")
    run(ctx, label, "continued", ["train", "--recipe", f.deep, "--resume", "none",
                                  *_train_args(ctx, f.deep, "deep_dus", ctx.continue_steps, f"checkpoint.load={dus}")],
        show=_every(25))
    run(ctx, label, "continued", ["train", "--recipe", f.deep, "--resume", "none",
                                  *_train_args(ctx, f.deep, "deep_scratch", ctx.continue_steps)], show=_every(25))
    run(ctx, label, "continued", ["train", "--recipe", f.parent, "--resume", "none",
                                  *_train_args(ctx, f.parent, "parent_continued", ctx.continue_steps,
                                               f"checkpoint.load={parent}")], show=_every(25))
    return {"dus": _curve(ctx, "deep_dus", f.deep), "scratch": _curve(ctx, "deep_scratch", f.deep),
            "parent_continued": _curve(ctx, "parent_continued", f.parent)}


def stage_prune(ctx: DemoContext, label: str) -> dict:
    f = ctx.family
    out = ctx.path("checkpoints", "pruned")
    run(ctx, label, "prune", ["prune", "--checkpoint", str(ctx.run_dir("deep_dus") / "checkpoints"), "--output", str(out),
                              "--recipe", f.mini, "--set", f"model.vocab_size={_vocab(ctx)}",
                              "--calib", str(ctx.tokens_prefix), "--samples", "64"])
    summary = out / PRUNE_SUMMARY_FILE
    return json.loads(summary.read_text()) if summary.exists() else {"checkpoint": str(out)}


def stage_distill(ctx: DemoContext, label: str) -> dict:
    f = ctx.family
    teacher = ctx.run_dir("deep_dus") / "checkpoints"
    pruned = ctx.path("checkpoints", "pruned")
    steps = ctx.continue_steps
    _fresh(ctx, "mini_distill", "mini_pruned_lm", "mini_scratch")
    run(ctx, label, "distill", ["distill", "--recipe", f.mini, "--teacher", str(teacher), "--student", str(pruned),
                                "--resume", "none", *_train_args(ctx, f.mini, "mini_distill", steps)], show=_every(25))
    run(ctx, label, "distill", ["train", "--recipe", f.mini, "--resume", "none",
                                *_train_args(ctx, f.mini, "mini_pruned_lm", steps, f"checkpoint.load={pruned}")],
        show=_every(25))
    run(ctx, label, "distill", ["train", "--recipe", f.mini, "--resume", "none",
                                *_train_args(ctx, f.mini, "mini_scratch", steps)], show=_every(25))
    return {"distill": _curve(ctx, "mini_distill", f.mini), "pruned_lm": _curve(ctx, "mini_pruned_lm", f.mini),
            "scratch": _curve(ctx, "mini_scratch", f.mini)}


# ----------------------------------------------------------------------------------- HF + eval
MODELS = {"base": "deep_dus", "mini": "mini_distill"}


def stage_convert(ctx: DemoContext, label: str) -> dict:
    result = {}
    for name, run_name in MODELS.items():
        out = ctx.path("hf", name)
        run(ctx, label, "convert", ["convert", "to-hf", "--checkpoint", str(ctx.run_dir(run_name) / "checkpoints"),
                                    "--output", str(out), "--tokenizer", str(ctx.path("tokenizer")), "--dtype", "fp32",
                                    "--overwrite"])  # the demo re-runs a stage on --force or after a failure
        result[name] = str(out)
    return result


PROMPTS = ["대한민국의 수도는", "이 영화는 정말", "제1조(목적) 이 법은", "오늘 날씨가"]


def stage_generate(ctx: DemoContext, label: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tokenizer.decode import decode_ids

    torch.manual_seed(0)
    generations: dict[str, list[dict]] = {}
    for name in MODELS:
        path = ctx.path("hf", name)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        generations[name] = []
        for prompt in PROMPTS:
            ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
            with torch.no_grad():
                torch.manual_seed(0)
                out = model.generate(**ids, max_new_tokens=40, do_sample=True, temperature=0.8, top_p=0.95,
                                     no_repeat_ngram_size=3, pad_token_id=tokenizer.pad_token_id)
            text = decode_ids(tokenizer, out[0][ids["input_ids"].shape[1]:].tolist())
            generations[name].append({"prompt": prompt, "continuation": text.text,
                                      "dangling_bytes": text.dangling_bytes, "invalid_bytes": text.invalid_bytes})
            print(f"{label} {name}: {prompt}▸{text.text[:80]!r}", flush=True)
    return {"generations": generations}


EVAL_TASKS = "klue_nli_mc,kornli_mc"
EVAL_LABELS = {"base": "demo Base (tiny)", "mini": "demo Mini (tiny)", "base_sft": "demo Base-inst (tiny)",
               "mini_sft": "demo Mini-inst (tiny)"}


def stage_eval(ctx: DemoContext, label: str) -> dict:
    """The base models as before; the SFT (``-inst``) models through their chat template, as the card's are."""
    results, labels = {}, []
    models = [(name, False) for name in MODELS] + [(f"{name}_sft", True) for name in MODELS
                                                   if ctx.path("hf", f"{name}_sft", "config.json").exists()]
    for name, chat in models:
        out = ctx.path("eval", f"{name}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        args = ["eval", "--model", str(ctx.path("hf", name)), "--tasks", EVAL_TASKS, "--data-dir", ctx.eval_data,
                "--output", str(out), "--device", "cpu"]
        if chat:
            args.append("--apply-chat-template")
        if ctx.eval_limit:
            args += ["--limit", str(ctx.eval_limit)]
        run(ctx, label, "eval", args)
        results[name] = json.loads(out.read_text())
        labels += ["--label", EVAL_LABELS[name]]
    table = ctx.path("eval", "table")
    run(ctx, label, "eval", ["eval", "table", *[str(ctx.path("eval", f"{n}.json")) for n, _ in models], *labels,
                             "--output", str(table)])
    return {"results": results, "table_md": str(table) + ".md", "table_html": str(table) + ".html"}


def stage_report(ctx: DemoContext, label: str) -> dict:
    from midm.demo_report import write_report

    return write_report(ctx)


def stage_sft(ctx: DemoContext, label: str) -> dict:
    from midm.demo_sft import stage_sft as sft

    return sft(ctx, label)


def stage_chat(ctx: DemoContext, label: str) -> dict:
    from midm.demo_sft import stage_chat as chat

    return chat(ctx, label)


STAGES: dict[str, Callable[[DemoContext, str], dict]] = {
    "filter": stage_filter,
    "tokenizer": stage_tokenizer,
    "tokenize": stage_tokenize,
    "pretrain": stage_pretrain,
    "dus": stage_dus,
    "continued": stage_continued,
    "prune": stage_prune,
    "distill": stage_distill,
    "sft": stage_sft,
    "convert": stage_convert,
    "generate": stage_generate,
    "chat": stage_chat,
    "eval": stage_eval,
    "report": stage_report,
}
