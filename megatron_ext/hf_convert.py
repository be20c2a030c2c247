"""``midm convert`` logic — Megatron distributed checkpoints ↔ Hugging Face models.

    midm convert to-hf   --checkpoint CKPT --output HF_DIR [--tokenizer DIR] [--dtype bf16] [--trim-vocab]
    midm convert from-hf --hf HF_DIR --output CKPT [--recipe NAME] [--set k=v …]
    midm convert reshard --checkpoint CKPT --output CKPT2 --tp N --pp M     (under torchrun, N×M ranks)

Checkpoints are read whatever TP/PP they were saved with: the model is rebuilt at TP=PP=1 in one
process and dist-checkpointing reshards on load (``loading.load_model``). Everything specific to an
HF architecture — its tensor table, its ``config.json`` both ways, its special tokens — is one record
in ``megatron_ext/hf/`` looked up by ``model_type`` (``llama`` today); the mapping engine applies
it in either direction. The command line is ``commands/convert.py``. The HF side is written from our recipe (+ tokenizer)
alone — nothing upstream is downloaded — as sharded safetensors with an index, a ``config.json``
holding exactly the fields of the released Mi:dm 2.0 config, and ``generation_config.json``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from megatron_ext.hf.mapping import Geometry
from megatron_ext.hf.registry import HF_DTYPES, ConvertError, get_architecture

SUMMARY_FILE = "midm_conversion.json"
DEFAULT_ARCHITECTURE = "llama"  # what every Mi:dm recipe exports as (LlamaForCausalLM)
DTYPES = HF_DTYPES


def geometry(model_cfg, hf_vocab_size: int | None = None) -> Geometry:
    """The mapping engine's view of a recipe's ``ModelConfig`` (HF vocabulary may be trimmed)."""
    m = model_cfg
    return Geometry(num_layers=m.num_layers, hidden_size=m.hidden_size, ffn_hidden_size=m.ffn_hidden_size,
                    num_attention_heads=m.num_attention_heads, num_query_groups=m.num_query_groups,
                    head_dim=m.kv_channels, padded_vocab_size=m.vocab_size,
                    hf_vocab_size=hf_vocab_size or m.vocab_size, tie_embeddings=m.tie_embeddings)


def hf_config(model_cfg, *, vocab_size: int, dtype: str = "bf16", architecture: str = DEFAULT_ARCHITECTURE,
              **token_ids) -> dict[str, Any]:
    """``config.json`` for a recipe's model, by the architecture's record."""
    return get_architecture(architecture).to_hf_config(model_cfg, vocab_size=vocab_size, dtype=dtype, **token_ids)


def model_fields_from_hf(cfg: dict[str, Any]) -> dict[str, Any]:
    """``ModelConfig`` fields from an HF ``config.json``; refuses what our model cannot represent.

    Raises:
        ConvertError: unregistered ``model_type``, or a feature the architecture record refuses.
    """
    return get_architecture(cfg.get("model_type")).from_hf_config(cfg)


# ---------------------------------------------------------------- Megatron side

def _rank() -> int:
    import torch

    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def _barrier() -> None:
    import torch

    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def read_recipe(ckpt: Path):
    from megatron_ext import loading

    return loading.read_recipe(ckpt)


def load_megatron_state(ckpt: Path, recipe, dtype: str = "fp32") -> dict:
    """Full state dict (CPU, ``dtype``) of a dist-checkpoint saved with any TP/PP."""
    import torch

    from megatron_ext import loading, parallel

    parallel.initialize(1, 1)
    model, _ = loading.load_model(ckpt, recipe=loading.single_process_recipe(recipe), dtype=dtype, use_te=None)
    return {k: v.detach().cpu() for k, v in model.state_dict().items()
            if isinstance(v, torch.Tensor) and not k.endswith("_extra_state")}


def norm_naming(model) -> str:
    """"te" when the model fuses norms into the next linear (Transformer Engine spec), else "local"."""
    return "te" if any(k.endswith("linear_qkv.layer_norm_weight") for k in model.state_dict()) else "local"


def save_megatron_checkpoint(model, state: dict, recipe, root: Path, note: dict[str, Any]) -> Path:
    from megatron_ext import checkpoint

    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("_extra_state")]
    if missing or result.unexpected_keys:
        raise ConvertError(f"converted weights do not fit the model: missing {missing[:5]}, "
                           f"unexpected {result.unexpected_keys[:5]}")
    recipe.parallel.tensor_model_parallel_size = recipe.parallel.pipeline_model_parallel_size = 1
    return checkpoint.save(root, 0, model, None, None, recipe, {"iteration": 0, **note})


# ---------------------------------------------------------------- HF side

def write_hf(out: Path, tensors: dict, config: dict, *, tokenizer_dir: Path | None, max_shard_size: str,
             eos_ids: list[int], pad_id: int | None) -> None:
    import torch
    from huggingface_hub import save_torch_state_dict

    out.mkdir(parents=True, exist_ok=True)
    dtype = getattr(torch, config["torch_dtype"])
    save_torch_state_dict({k: v.to(dtype).contiguous() for k, v in tensors.items()}, out,
                          max_shard_size=max_shard_size, metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    generation = {"bos_token_id": config["bos_token_id"],
                  "eos_token_id": eos_ids[0] if len(eos_ids) == 1 else eos_ids}
    if pad_id is not None:
        generation["pad_token_id"] = pad_id
    (out / "generation_config.json").write_text(json.dumps(generation, indent=1) + "\n")
    if tokenizer_dir is not None:
        from transformers import AutoTokenizer

        from tokenizer.hf import CHAT_TEMPLATE

        tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        if tok.chat_template is None and "<|start_header_id|>" in tok.get_vocab():
            tok.chat_template = CHAT_TEMPLATE  # Mi:dm's template: chat turns end at <|eot_id|>, a generation eos
        tok.save_pretrained(str(out))


def read_hf(hf_dir: Path) -> tuple[dict, dict]:
    """(config.json dict, full state dict) from a (possibly sharded) safetensors HF directory."""
    from safetensors.torch import load_file

    config_path = hf_dir / "config.json"
    if not config_path.is_file():
        raise ConvertError(f"{hf_dir} has no config.json: not a Hugging Face model directory")
    index = hf_dir / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (hf_dir / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise ConvertError(f"{hf_dir} has no model.safetensors(.index.json); only safetensors weights are read "
                           "(re-save with save_pretrained(safe_serialization=True))")
    state: dict = {}
    for name in files:
        state.update(load_file(str(hf_dir / name)))
    return json.loads(config_path.read_text()), state


def _tokenizer_ids(tokenizer_dir: Path | None, architecture: str = DEFAULT_ARCHITECTURE
                   ) -> tuple[int, list[int], int | None, int | None]:
    """(bos, eos ids for generation, pad, len(tokenizer)) — the architecture's ids when no tokenizer is given."""
    facts = get_architecture(architecture).special_tokens
    if tokenizer_dir is None:
        return facts.bos_id, [facts.eos_id], None, None
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    bos = tok.bos_token_id if tok.bos_token_id is not None else facts.bos_id
    eos = [tok.eos_token_id if tok.eos_token_id is not None else facts.eos_id]
    eot = tok.convert_tokens_to_ids(facts.eot_token) if facts.eot_token in tok.get_vocab() else None
    if eot is not None and eot not in eos:
        eos.append(eot)
    return bos, eos, tok.pad_token_id, len(tok)


# ---------------------------------------------------------------- commands

def to_hf(ckpt: Path, out: Path, *, tokenizer_dir: Path | None = None, dtype: str | None = None,
          trim_vocab: bool = False, vocab_size: int | None = None, max_shard_size: str = "5GB") -> dict:
    from megatron_ext.hf.mapping import megatron_to_hf

    arch = get_architecture(DEFAULT_ARCHITECTURE)
    started = time.time()
    recipe = read_recipe(ckpt)
    bos, eos_ids, pad, tok_len = _tokenizer_ids(tokenizer_dir)
    m = recipe.model
    if trim_vocab and vocab_size is None:
        if tok_len is None:
            raise ConvertError("--trim-vocab needs --tokenizer (the unpadded size is len(tokenizer))")
        vocab_size = tok_len
    hf_vocab = vocab_size or m.vocab_size
    if tok_len is not None and tok_len > hf_vocab:
        raise ConvertError(f"the tokenizer has {tok_len} tokens but the model only {hf_vocab} embedding rows")
    dtype = dtype or recipe.precision.dtype
    config = arch.to_hf_config(m, vocab_size=hf_vocab, dtype=dtype, bos_token_id=bos, eos_token_id=eos_ids[0])
    tensors = megatron_to_hf(load_megatron_state(ckpt, recipe, dtype), geometry(m, hf_vocab), arch.rules)
    if _rank() == 0:  # under a launcher every rank loads (collectively); one writes
        write_hf(out, tensors, config, tokenizer_dir=tokenizer_dir, max_shard_size=max_shard_size,
                 eos_ids=eos_ids, pad_id=pad)
    summary = {"direction": "to-hf", "source": str(ckpt), "output": str(out), "recipe": recipe.name,
               "padded_vocab_size": m.vocab_size, "hf_vocab_size": hf_vocab, "dtype": DTYPES[dtype],
               "tensors": len(tensors), "parameters": sum(t.numel() for t in tensors.values()),
               "tokenizer": str(tokenizer_dir) if tokenizer_dir else None, "elapsed_s": round(time.time() - started, 2)}
    if _rank() == 0:
        (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    _barrier()
    return summary


def _base_recipe(name: str | None, fields: dict[str, Any]):
    """(recipe, geometry matched): the named recipe, or the registered one whose geometry matches the
    HF model, else ``tiny`` for the non-model settings."""
    from recipes import get_recipe, recipe_names

    candidates = [name] if name else recipe_names()
    for candidate in candidates:
        recipe = get_recipe(candidate)
        if all(v == fields[k] for k, v in recipe.model.geometry().items()):
            return recipe, True
    return (get_recipe(name) if name else get_recipe("tiny")), False


def from_hf(hf_dir: Path, out: Path, *, recipe_name: str | None = None, overrides: list[str] | None = None,
            padded_vocab_size: int | None = None) -> dict:
    import torch
    from recipes import apply_overrides

    from megatron_ext import loading, parallel
    from megatron_ext.hf.mapping import hf_to_megatron

    started = time.time()
    config, hf_state = read_hf(hf_dir)
    arch = get_architecture(config.get("model_type"))
    fields = arch.from_hf_config(config)
    recipe, matched = _base_recipe(recipe_name, fields)
    base_vocab = recipe.model.vocab_size
    for key, value in fields.items():
        setattr(recipe.model, key, value)
    hf_vocab = int(config["vocab_size"])
    # Restore the recipe's padding when its geometry is this model's (a Megatron → HF(trimmed) →
    # Megatron round trip gets its rows back); otherwise keep the HF vocabulary as it is.
    recipe.model.vocab_size = padded_vocab_size or (base_vocab if matched and base_vocab >= hf_vocab else hf_vocab)
    recipe.name = recipe_name or f"{recipe.name}_from_hf"
    apply_overrides(recipe, overrides)
    dtypes = {t.dtype for t in hf_state.values()}
    dtype = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtypes.pop(), "fp32") if len(dtypes) == 1 else "fp32"
    parallel.initialize(1, 1)
    # the HF dtype (no rounding, no doubled memory); no random init: every weight comes from the source
    model = loading.build_for_load(loading.single_process_recipe(recipe), dtype=dtype, use_te=None)
    state = hf_to_megatron(hf_state, geometry(recipe.model, hf_vocab), arch.rules, naming=norm_naming(model))
    path = save_megatron_checkpoint(model, state, recipe, out, {"converted_from": str(hf_dir)})
    summary = {"direction": "from-hf", "source": str(hf_dir), "output": str(path), "recipe": recipe.name,
               "hf_vocab_size": hf_vocab, "padded_vocab_size": recipe.model.vocab_size, "tensors": len(state),
               "elapsed_s": round(time.time() - started, 2)}
    if _rank() == 0:
        (Path(out) / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def reshard(ckpt: Path, out: Path, tp: int, pp: int) -> Path:
    """Re-save a checkpoint under another TP×PP layout (collective: run under torchrun with tp×pp ranks)."""
    from megatron_ext import checkpoint, parallel
    from megatron_ext.model import build_model, transformer_config

    recipe = checkpoint.read_recipe(ckpt)
    recipe.parallel.tensor_model_parallel_size, recipe.parallel.pipeline_model_parallel_size = tp, pp
    parallel.initialize(tp, pp)
    # no random initialisation: every weight is read from the checkpoint
    model = build_model(recipe=recipe, config=transformer_config(recipe=recipe, perform_initialization=False))
    checkpoint.load_model_only(ckpt, model)
    return checkpoint.save(out, 0, model, None, None, recipe, {"iteration": 0, "resharded_from": str(ckpt)})
