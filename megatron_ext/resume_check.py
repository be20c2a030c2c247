"""A run whose recipe differs from its checkpoint's: compare before resuming, print, apply or refuse.

Checked before any process group starts (torch-free: it reads ``recipe.json`` and
``trainer_state.json`` of the checkpoint). Every difference is printed and falls in one kind:

* **model shape** (``ModelConfig.GEOMETRY`` and ``vocab_size``) — never resumed: the error names the
  fields and the tools that do change a shape (``midm prune``, ``midm dus``) or a new run
  (``checkpoint.load``). Also checked for ``checkpoint.load`` (initial weights of a new run).
* **LR / weight-decay schedule** (the effective ``OptimizerParamScheduler`` arguments, so
  ``train.steps`` counts only where it sets ``decay_steps``) — refused unless
  ``checkpoint.override_scheduler=true``; then the recipe's schedule is recomputed at the resumed
  step, as Megatron-LM's ``--override-opt_param-scheduler`` does (both cosine and WSD).
* **training data** (the resolved blend — prefixes and normalised weights, so an edited
  ``data.blend_file`` counts —, ``data.split``, ``data.seq_length``, ``data.seed``; for SFT / DPO the
  resolved ``sft.dataset`` / ``dpo.dataset`` folder and a fingerprint of its files, so another
  folder or data re-made in place counts, another spelling of the same path does not) — refused unless
  ``checkpoint.allow_data_change=true``; then the run continues on the new data from its sample counter.
  Data of another *tokenizer* than the checkpoint's run recorded (``tokenizer_check.py``) is refused
  even then, unless ``checkpoint.allow_tokenizer_change=true``.
* anything else (logging, checkpoint cadence, evaluation, workers, batch split, parallel layout, Adam
  betas/eps, …) — applied as the recipe says.

A start that does not continue this run directory's own checkpoints (``--resume none``, or a
checkpoint PATH from elsewhere) is refused when the directory holds an earlier run's metrics or
checkpoints: the new run would truncate ``metrics.jsonl`` and leave stale ``iter_*`` beside a new
``latest``. ``--resume auto`` that finds no checkpoint keeps an earlier attempt's metrics as
``metrics.jsonl.<n>.prev`` (said so) before starting over.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from megatron_ext.checkpoint_integrity import check_structure
from megatron_ext.checkpoint_output import existing_checkpoint, iteration_dir
from megatron_ext.run_files import METRICS_FILE
from midm.errors import MidmError
from recipes import Recipe, recipe_from_dict, recipe_to_dict

SCHEDULE_FIELDS = ("optimizer.lr", "optimizer.min_lr", "optimizer.weight_decay", "train.steps")
DATA_FIELDS = ("data.blend", "data.blend_file", "data.split", "data.seq_length", "data.seed")
_EDGE_BYTES = 1 << 20  # bytes hashed at each end of a data file for its fingerprint
OVERRIDE_SCHEDULER = "checkpoint.override_scheduler"
ALLOW_DATA_CHANGE = "checkpoint.allow_data_change"


class ResumeError(MidmError, RuntimeError):
    """The recipe differs from the checkpoint's in a way a resume does not apply silently, or a fresh
    start would overwrite an earlier run's files; the message lists the differences and the fix."""


@dataclass(frozen=True)
class Difference:
    field: str  # "section.name", or "data blend" for the resolved blend
    old: Any  # the checkpoint's value
    new: Any  # this recipe's value
    kind: str  # "model" | "schedule" | "data" | "applied"

    def __str__(self) -> str:
        return f"{self.field}: {_short(self.old)} → {_short(self.new)}"


def schedule_params(recipe: Recipe) -> dict[str, Any]:
    """Keyword arguments of Megatron-Core's ``OptimizerParamScheduler`` for this recipe (steps, LR, WD).

    ``decay_steps`` defaults to ``train.steps``; WSD's final decay to 10% of it.
    """
    o, s = recipe.optimizer, recipe.scheduler
    decay_steps = s.decay_steps or recipe.train.steps
    style = {"cosine": "cosine", "wsd": "WSD", "constant": "constant", "linear": "linear"}[s.style]
    wsd = style == "WSD"
    return dict(init_lr=0.0, max_lr=o.lr, min_lr=o.min_lr, lr_warmup_steps=s.warmup_steps,
                lr_decay_steps=max(decay_steps, s.warmup_steps + 1), lr_decay_style=style,
                start_wd=o.weight_decay, end_wd=o.weight_decay, wd_incr_steps=decay_steps, wd_incr_style="constant",
                wsd_decay_steps=(s.wsd_decay_steps or max(1, decay_steps // 10)) if wsd else None,
                lr_wsd_decay_style=s.wsd_decay_style if wsd else None)


def effective_schedule(recipe: Recipe) -> dict[str, Any]:
    """The scheduler arguments that change some step's LR or weight decay (others are dropped).

    Follows ``OptimizerParamScheduler.get_lr``: ``constant`` reads only warmup and max LR; only WSD
    reads its decay arguments; a constant weight decay ignores its increment steps.
    """
    p = schedule_params(recipe)
    keep = ["init_lr", "max_lr", "lr_warmup_steps", "lr_decay_style", "start_wd", "end_wd"]
    if p["lr_decay_style"] != "constant":
        keep += ["min_lr", "lr_decay_steps"]
    if p["lr_decay_style"] == "WSD":
        keep += ["wsd_decay_steps", "lr_wsd_decay_style"]
    return {k: p[k] for k in keep}


def blend_record(recipe: Recipe) -> list[list]:
    """The resolved blend as ``[[normalised weight, absolute prefix], …]`` (stored in trainer_state.json)."""
    from megatron_ext.data_check import resolve_blend

    prefixes, weights = resolve_blend(recipe)
    weights = weights or [1.0] * len(prefixes)
    total = sum(weights) or 1.0
    return [[round(w / total, 12), os.path.abspath(p)] for w, p in zip(weights, prefixes)]


def dataset_record(folder: str | os.PathLike) -> dict[str, str]:
    """``{"dataset": absolute path, "fingerprint": hex}`` of a ``midm data sft`` / ``midm data prefs`` folder.

    The fingerprint (SHA-256) covers ``index.json`` and, for every file of its splits, the name, the
    size and the first and last MiB: data made again in place from other conversations changes it
    (another folder changes ``dataset``), and a resume reads at most 2 MiB per file. ``stats.json``
    (timings) is left out, so re-making the same data counts as the same.
    """
    import hashlib

    root = Path(folder).resolve()
    digest = hashlib.sha256((root / "index.json").read_bytes())
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.parent != root):
        size = path.stat().st_size
        digest.update(f"\0{path.relative_to(root).as_posix()}\0{size}\0".encode())
        with path.open("rb") as f:
            digest.update(f.read(_EDGE_BYTES))
            if size > 2 * _EDGE_BYTES:
                f.seek(size - _EDGE_BYTES)
                digest.update(f.read(_EDGE_BYTES))
    return {"dataset": str(root), "fingerprint": digest.hexdigest()}


def data_record(recipe: Recipe):
    """What data ``recipe`` trains on, as kept in ``trainer_state.json`` (``data_blend``) and compared on
    resume: the resolved blend (:func:`blend_record`), else the SFT / DPO dataset's
    :func:`dataset_record`, else None."""
    d = recipe.data
    if d.blend or d.blend_file:
        return blend_record(recipe)
    for section in (recipe.dpo, recipe.sft):
        if section is not None and section.dataset and (Path(section.dataset) / "index.json").is_file():
            return dataset_record(section.dataset)
    return None


def compare(saved: Recipe, saved_state: dict, recipe: Recipe) -> list[Difference]:
    """Every difference between a checkpoint's recipe (+ trainer state) and this recipe, classified."""
    old, new = _flatten(recipe_to_dict(saved)), _flatten(recipe_to_dict(recipe))
    geometry = {f"model.{name}" for name in (*recipe.model.GEOMETRY, "vocab_size")}
    schedule_changed = effective_schedule(saved) != effective_schedule(recipe)
    diffs = []
    for field in sorted(set(old) | set(new)):
        if old.get(field) == new.get(field):
            continue
        if field in geometry:
            kind = "model"
        elif field in DATA_FIELDS:
            kind = "data"
        elif schedule_changed and (field in SCHEDULE_FIELDS or field.startswith("scheduler.")):
            kind = "schedule"
        else:
            kind = "applied"
        diffs.append(Difference(field, old.get(field), new.get(field), kind))
    saved_blend = saved_state.get("data_blend")
    if saved_blend is not None and not any(d.kind == "data" for d in diffs):
        current = data_record(recipe)
        if current != saved_blend:  # same fields, other files or weights (an edited blend file, data re-made)
            name = "data blend" if isinstance(saved_blend, list) else "dataset contents"
            diffs.append(Difference(name, saved_blend, current, "data"))
    return diffs


def check_resume(recipe: Recipe, checkpoint: str | os.PathLike, step: int | None = None) -> list[Difference]:
    """Compare ``recipe`` with the checkpoint's; return the differences to apply (print them).

    Raises ``DamagedCheckpointError`` when the checkpoint misses (or cannot parse) a file a resume
    needs, ``ResumeError`` for a model-shape change, or a schedule / data change that the recipe
    does not allow (``checkpoint.override_scheduler`` / ``checkpoint.allow_data_change``),
    ``TokenizerMismatchError`` for data of another tokenizer than the checkpoint's
    (``checkpoint.allow_tokenizer_change``).
    """
    path = iteration_dir(checkpoint)
    if not (path / "recipe.json").is_file():
        return []  # not a checkpoint of ours: the loader says so, naming the path
    check_structure(path, need_trainer_state=True)  # a damaged checkpoint is named before any comparison
    saved = recipe_from_dict(json.loads((path / "recipe.json").read_text()))
    state = json.loads((path / "trainer_state.json").read_text())
    step = state.get("step", step)
    diffs = compare(saved, state, recipe)
    model = [d for d in diffs if d.kind == "model"]
    if model:
        base = saved.checkpoint.load
        if getattr(recipe, "sft", None) is not None and base and not recipe.checkpoint.load:
            # `midm sft` takes its model from --base: a re-run without it gets the recipe's own geometry
            raise ResumeError(f"this recipe's model has another shape than checkpoint {path}: "
                              + "; ".join(map(str, model)) + f". This run took its model from --base {base}: "
                              f"run the same command again, with --base {base}")
        raise ResumeError(
            f"this recipe's model has another shape than checkpoint {path}: " + "; ".join(map(str, model))
            + ". A run keeps its model's shape: resume with the checkpoint's values (its recipe.json); to change "
            "width or depth, make new weights with `midm prune` / `midm dus` and train them as a new run "
            "(--set checkpoint.load=OUTPUT with another logging.run_name).")
    from megatron_ext import tokenizer_check

    tokenizer_check.require_same(
        tokenizer_check.of_data(recipe), tokenizer_check.from_record(state),
        made_says=f"this recipe's data ({tokenizer_check.data_name(recipe)}) was made with",
        used_says=f"checkpoint {path} was trained with",
        fix="Resume on data made with the checkpoint's tokenizer (`midm data tokenize|sft|prefs --tokenizer DIR`)",
        allow=recipe.checkpoint.allow_tokenizer_change)
    refused, fixes = [], []
    schedule = [d for d in diffs if d.kind == "schedule"]
    if schedule and not recipe.checkpoint.override_scheduler:
        refused += schedule
        fixes.append(f"To recompute this recipe's LR schedule at step {step} (Megatron-LM's "
                     f"--override-opt_param-scheduler) add --set {OVERRIDE_SCHEDULER}=true; to keep the checkpoint's "
                     "schedule, resume with its values")
    data = [d for d in diffs if d.kind == "data"]
    if data and not recipe.checkpoint.allow_data_change:
        refused += data
        fixes.append(f"To continue on the new data from sample {state.get('consumed_samples', '?')} add --set "
                     f"{ALLOW_DATA_CHANGE}=true; to keep training on the old data, resume with its values")
    if refused:
        raise ResumeError(f"this recipe differs from checkpoint {path} where a resume does not follow it silently: "
                          + "; ".join(map(str, refused)) + ". " + ". ".join(fixes) + ".")
    return diffs


def check_initial_weights(recipe: Recipe, checkpoint: str | os.PathLike) -> None:
    """``checkpoint.load`` must hold a model of this recipe's shape; raises ``ResumeError`` otherwise."""
    path = iteration_dir(checkpoint)
    if not (path / "recipe.json").is_file():
        return  # not ours to judge here: the loader reports a missing or foreign checkpoint
    saved = recipe_from_dict(json.loads((path / "recipe.json").read_text()))
    diff = [Difference(f"model.{k}", a, b, "model") for k, (a, b) in saved.model.geometry_diff(recipe.model).items()]
    if saved.model.vocab_size != recipe.model.vocab_size:
        diff.append(Difference("model.vocab_size", saved.model.vocab_size, recipe.model.vocab_size, "model"))
    if diff:
        raise ResumeError(f"checkpoint.load {path} holds a model of another shape than this recipe's: "
                          + "; ".join(map(str, diff)) + ". Use the recipe it was made for (its recipe.json), or "
                          "`midm prune` / `midm dus` to change width or depth.")


def describe(diffs: list[Difference], step: int) -> list[str]:
    """Lines saying what the resumed run does with each difference."""
    what = {"schedule": f"LR schedule recomputed at step {step} ({OVERRIDE_SCHEDULER})",
            "data": f"training continues on the new data ({ALLOW_DATA_CHANGE})", "applied": "applied"}
    return [f"  {d}  [{what[d.kind]}]" for d in diffs]


def check_fresh_start(run_dir: Path, ckpt_dir: Path, resume: str, resume_from: Path | None,
                      is_rank0: bool) -> str | None:
    """Refuse a start that would overwrite an earlier run's files; returns a note to print, or None.

    ``resume_from`` is the checkpoint the run continues from (None: step 0). Raises ``ResumeError``.
    Rank 0 may rename ``metrics.jsonl``: call it only while holding the run's lock
    (``checkpoint.lock_run``), so that a trainer refused by the lock never touches a live run's files.
    """
    own = resume_from is not None and _inside(resume_from, ckpt_dir)
    if own:
        return None
    earlier = _earlier_run(run_dir, ckpt_dir)
    if not earlier:
        return None
    if resume == "auto" and resume_from is None and existing_checkpoint(ckpt_dir) is None:
        # An earlier attempt that never checkpointed (e.g. killed before its first save): keep its records.
        metrics = run_dir / METRICS_FILE
        n = 1
        while (run_dir / f"{METRICS_FILE}.{n}.prev").exists():
            n += 1
        kept = run_dir / f"{METRICS_FILE}.{n}.prev"
        if is_rank0:
            os.replace(metrics, kept)
        return f"no checkpoint in {ckpt_dir}: starting at step 0; the earlier attempt's metrics are kept as {kept}"
    # --resume auto over checkpoints lands here only when all are damaged, which the Trainer reports first
    cont = "" if resume == "auto" else "Continue it with --resume auto, "
    raise ResumeError(f"{run_dir} holds an earlier run ({earlier}); --resume {resume} would start another run on top "
                      "of it (truncating its metrics.jsonl, leaving its iter_* beside a new latest). "
                      f"{cont}choose another --set logging.run_name=… (or checkpoint.dir), or move it away yourself.")




def _earlier_run(run_dir: Path, ckpt_dir: Path) -> str:
    found = []
    latest = ckpt_dir / "latest"
    if latest.is_file():
        found.append(f"{ckpt_dir}/latest → {latest.read_text().strip()}")
    elif existing_checkpoint(ckpt_dir) is not None:
        found.append(f"checkpoints in {ckpt_dir}")
    records = _metric_records(run_dir / METRICS_FILE)
    if records:
        found.append(f"{records} records in {METRICS_FILE}")
    return ", ".join(found)


def _metric_records(path: Path) -> int:
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.strip())


def _inside(path: Path, root: Path) -> bool:
    try:
        Path(path).resolve().relative_to(Path(root).resolve())
        return True
    except ValueError:
        return False


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _short(value: Any, limit: int = 120) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit - 1] + "…"
