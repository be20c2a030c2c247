"""``midm convert from-hf`` — a Hugging Face model → a Megatron distributed checkpoint.

The HF directory's ``config.json`` gives the model's geometry through its architecture record
(``megatron_ext/hf/``, by ``model_type``); its safetensors are read as the mapping needs them, fused
into Megatron's layout and released; the checkpoint is saved from that one copy by assigning the
tensors to a ``GPTModel`` built on the ``meta`` device (≈ 1.0 × the bf16 weights + 1 GiB, measured by
``benchmarks/checkpoint_memory.py``). A directory that ``midm convert to-hf`` wrote brings back its
recorded padded vocabulary and tokenizer fingerprint (``midm_conversion.json``). The other direction
and ``reshard`` are :mod:`megatron_ext.hf_convert`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from megatron_ext import tokenizer_check
from megatron_ext.hf.registry import ConvertError, get_architecture
from megatron_ext.hf_convert import DTYPES, SUMMARY_FILE, _barrier, _rank, geometry


def model_fields_from_hf(cfg: dict[str, Any]) -> dict[str, Any]:
    """``ModelConfig`` fields from an HF ``config.json``; refuses what our model cannot represent.

    Raises:
        ConvertError: unregistered ``model_type``, or a feature the architecture record refuses.
    """
    return get_architecture(cfg.get("model_type")).from_hf_config(cfg)


def _assign_and_save(state: dict, recipe, root: Path, note: dict[str, Any]) -> Path:
    """Save ``state`` (a full local-spec Megatron state dict) as a dist-checkpoint without copying it.

    The ``GPTModel`` is built on the ``meta`` device (no memory, no initialisation) and its
    parameters are replaced by the tensors of ``state`` themselves (``load_state_dict(assign=True)``),
    so the checkpoint is written from the one copy the caller holds, with exactly the keys,
    shardings and dtypes a trained model would save.
    """
    import torch

    from megatron_ext import checkpoint
    from megatron_ext.loading import single_process_recipe
    from megatron_ext.model import build_model, transformer_config
    from megatron_ext.state_io import SavingView

    recipe.parallel.tensor_model_parallel_size = recipe.parallel.pipeline_model_parallel_size = 1
    build = single_process_recipe(recipe)
    with torch.device("meta"):
        model = build_model(recipe=build, config=transformer_config(recipe=build, perform_initialization=False,
                                                                    use_cpu_initialization=True),
                            pre_process=True, post_process=True, use_te=False)
    result = model.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in result.missing_keys if not k.endswith("_extra_state")]
    if missing or result.unexpected_keys:
        raise ConvertError(f"converted weights do not fit the model: missing {missing[:5]}, "
                           f"unexpected {result.unexpected_keys[:5]}")
    left = [n for n, p in model.named_parameters() if p.is_meta]
    if left:
        raise ConvertError(f"no weights for {left[:5]}")
    return checkpoint.save(root, 0, SavingView(model), None, None, recipe, {"iteration": 0, **note})


def read_hf(hf_dir: Path) -> tuple[dict, dict]:
    """(config.json dict, full state dict) from a (possibly sharded) safetensors HF directory."""
    from megatron_ext.hf_files import SafetensorsDir

    tensors = SafetensorsDir(hf_dir)
    return tensors.config, dict(tensors.items())


def _export_record(hf_dir: Path) -> dict:
    """What ``midm convert to-hf`` recorded in ``hf_dir/midm_conversion.json``; empty for another HF directory."""
    try:
        record = json.loads((Path(hf_dir) / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) and record.get("direction") == "to-hf" else {}


def _exported_padding(hf_dir: Path, hf_vocab: int) -> int | None:
    """The Megatron vocabulary rows ``midm convert to-hf`` recorded (``padded_vocab_size``); None without
    that record or when it cannot hold ``hf_vocab`` rows."""
    padded = _export_record(hf_dir).get("padded_vocab_size")
    return padded if isinstance(padded, int) and padded >= hf_vocab else None


def _base_recipe(name: str | None, fields: dict[str, Any]):
    """(recipe, geometry matched): the named recipe, or the registered pretraining recipe whose geometry
    matches the HF model (post-training recipes — those with an ``sft``/``dpo`` section — share their
    base's geometry and are never guessed), else ``tiny`` for the non-model settings."""
    from recipes import get_recipe, recipe_names

    candidates = [name] if name else recipe_names()
    for candidate in candidates:
        recipe = get_recipe(candidate)
        if not name and (getattr(recipe, "sft", None) is not None or getattr(recipe, "dpo", None) is not None):
            continue
        if all(v == fields[k] for k, v in recipe.model.geometry().items()):
            return recipe, True
    return (get_recipe(name) if name else get_recipe("tiny")), False


def from_hf(hf_dir: Path, out: Path, *, recipe_name: str | None = None, overrides: list[str] | None = None,
            padded_vocab_size: int | None = None, overwrite: bool = False) -> dict:
    """Import an HF model as a TP=PP=1 dist-checkpoint holding one copy of the weights, in their dtype.

    Each Megatron tensor is built from its HF part(s) as the mapping reaches it (q/k/v and gate/up
    fused, the vocabulary padded), reading the parts then and releasing them at once
    (``hf_files.SafetensorsDir``); the checkpoint is saved from those tensors directly (no model is
    allocated or initialised). Peak memory: the weights once, plus one layer's parts.

    Megatron's vocabulary rows: ``padded_vocab_size``, else the padded size ``to_hf`` recorded in
    ``hf_dir/midm_conversion.json`` (a round trip keeps its rows, trimmed or not), else the matching
    recipe's when it holds the HF vocabulary, else the HF vocabulary.

    The written recipe is the registered one whose geometry matches (``--recipe`` to choose one);
    when none does, ``tiny``'s non-model settings with the HF model's geometry and the HF weights'
    dtype as ``precision.dtype`` (never a silent fp32).

    ``out`` may not hold a checkpoint already (checked first); with ``overwrite`` the new one
    replaces it once complete (``checkpoint_output.staged``). The fingerprint of the tokenizer in
    ``hf_dir`` (``tokenizer.json`` / ``tokenizer.model``, when there; else the one ``to-hf`` recorded in
    ``midm_conversion.json``) is recorded in the checkpoint.

    Raises:
        ConvertError: not an HF safetensors directory, an unregistered ``model_type``, or a feature
            the architecture record refuses.
        OutputExistsError: ``out`` holds a checkpoint and ``overwrite`` is False.
    """
    from recipes import apply_overrides

    from megatron_ext import checkpoint_output, parallel
    from megatron_ext.hf.mapping import hf_to_megatron
    from megatron_ext.hf_files import SafetensorsDir, source_dtype

    checkpoint_output.check(out, overwrite=overwrite)
    started = time.time()
    hf_state = SafetensorsDir(hf_dir)
    config = hf_state.config
    arch = get_architecture(config.get("model_type"))
    fields = arch.from_hf_config(config)
    recipe, matched = _base_recipe(recipe_name, fields)
    base_vocab = recipe.model.vocab_size
    for key, value in fields.items():
        setattr(recipe.model, key, value)
    hf_vocab = int(config["vocab_size"])
    # Restore the padding: the one `midm convert to-hf` recorded for this export (a Megatron → HF → Megatron
    # round trip gets its own rows back, whatever recipe default its geometry matches), else the recipe's
    # when its geometry is this model's; otherwise keep the HF vocabulary as it is.
    recipe.model.vocab_size = padded_vocab_size or _exported_padding(hf_dir, hf_vocab) or (
        base_vocab if matched and base_vocab >= hf_vocab else hf_vocab)
    dtype = source_dtype(hf_state)
    if not matched and recipe_name is None:
        recipe.precision.dtype = dtype  # not tiny's fp32: the geometry is the HF model's, so is its dtype
        recipe.precision.fp8 = None
    recipe.name = recipe_name or f"{recipe.name}_from_hf"
    apply_overrides(recipe, overrides)
    parallel.initialize(1, 1)
    state = hf_to_megatron(hf_state, geometry(recipe.model, hf_vocab), arch.rules, naming="local")
    with checkpoint_output.staged(out, overwrite=overwrite, writer=_rank() == 0) as root:
        # the HF repo's own tokenizer when it ships one, else the one `to-hf` recorded for an export without it
        made_with = tokenizer_check.of_directory(hf_dir) or tokenizer_check.from_record(_export_record(hf_dir))
        path = Path(out) / _assign_and_save(state, recipe, root, {"converted_from": str(hf_dir),
                                                                  **(made_with.as_state() if made_with else {})}).name
        summary = {"direction": "from-hf", "source": str(hf_dir), "output": str(path), "recipe": recipe.name,
                   "hf_vocab_size": hf_vocab, "padded_vocab_size": recipe.model.vocab_size, "tensors": len(state),
                   "dtype": DTYPES[dtype], "recipe_dtype": recipe.precision.dtype,
                   "tokenizer_fingerprint": made_with.fingerprint if made_with else None,
                   "elapsed_s": round(time.time() - started, 2)}
        if _rank() == 0:
            (root / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    _barrier()
    return summary
