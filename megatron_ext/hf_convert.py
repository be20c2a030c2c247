"""``midm convert`` — Megatron distributed checkpoints ↔ Hugging Face ``LlamaForCausalLM``.

    midm convert to-hf   --checkpoint CKPT --output HF_DIR [--tokenizer DIR] [--dtype bf16] [--trim-vocab]
    midm convert from-hf --hf HF_DIR --output CKPT [--recipe NAME] [--set k=v …]
    midm convert reshard --checkpoint CKPT --output CKPT2 --tp N --pp M     (under torchrun, N×M ranks)

Checkpoints are read whatever TP/PP they were saved with: the model is rebuilt at TP=PP=1 in one
process and dist-checkpointing reshards on load. The tensor mapping itself is the declarative
table in :mod:`megatron_ext.hf_mapping`. The HF side is written from our recipe (+ tokenizer)
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

# Exactly the fields (and order) of the released Mi:dm 2.0 Mini config.json.
HF_CONFIG_FIELDS = (
    "architectures", "model_type", "num_hidden_layers", "hidden_size", "intermediate_size",
    "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_act", "attention_bias", "mlp_bias",
    "vocab_size", "tie_word_embeddings", "rope_theta", "rope_scaling", "max_position_embeddings",
    "rms_norm_eps", "initializer_range", "bos_token_id", "eos_token_id", "torch_dtype",
)
DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
MIDM_BOS, MIDM_EOS, MIDM_EOT = 0, 2, "<|eot_id|>"
SUMMARY_FILE = "midm_conversion.json"


class ConvertError(RuntimeError):
    """A user-fixable problem; the message says what to do."""


# ---------------------------------------------------------------- configs

def geometry(model_cfg, hf_vocab_size: int | None = None):
    from megatron_ext.hf_mapping import Geometry

    m = model_cfg
    return Geometry(num_layers=m.num_layers, hidden_size=m.hidden_size, ffn_hidden_size=m.ffn_hidden_size,
                    num_attention_heads=m.num_attention_heads, num_query_groups=m.num_query_groups,
                    head_dim=m.kv_channels, padded_vocab_size=m.vocab_size,
                    hf_vocab_size=hf_vocab_size or m.vocab_size, tie_embeddings=m.tie_embeddings)


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def hf_config(model_cfg, *, vocab_size: int, dtype: str = "bf16", bos_token_id: int = MIDM_BOS,
              eos_token_id: int = MIDM_EOS) -> dict[str, Any]:
    """``config.json`` for a recipe's model: the released model's fields, nothing else."""
    m = model_cfg
    values = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "num_hidden_layers": m.num_layers, "hidden_size": m.hidden_size, "intermediate_size": m.ffn_hidden_size,
        "num_attention_heads": m.num_attention_heads, "num_key_value_heads": m.num_query_groups,
        "head_dim": m.kv_channels, "hidden_act": "silu", "attention_bias": False, "mlp_bias": False,
        "vocab_size": vocab_size, "tie_word_embeddings": m.tie_embeddings, "rope_theta": _number(m.rotary_base),
        "rope_scaling": None, "max_position_embeddings": m.max_position_embeddings,
        "rms_norm_eps": m.norm_epsilon,
        "initializer_range": m.init_method_std, "bos_token_id": bos_token_id, "eos_token_id": eos_token_id,
        "torch_dtype": DTYPES[dtype],
    }
    return {k: values[k] for k in HF_CONFIG_FIELDS}


def model_fields_from_hf(cfg: dict[str, Any]) -> dict[str, Any]:
    """ModelConfig fields from an HF Llama config.json; refuses what our model cannot represent."""
    problems = []
    if cfg.get("model_type") != "llama":
        problems.append(f"model_type {cfg.get('model_type')!r} (need 'llama')")
    if cfg.get("hidden_act", "silu") != "silu":
        problems.append(f"hidden_act {cfg.get('hidden_act')!r} (need silu / SwiGLU)")
    if cfg.get("attention_bias") or cfg.get("mlp_bias"):
        problems.append("biases (attention_bias/mlp_bias must be false)")
    rope = cfg.get("rope_parameters") or {}
    scaling = cfg.get("rope_scaling")
    if (scaling and scaling.get("rope_type", scaling.get("type")) not in (None, "default")) or \
            rope.get("rope_type", "default") != "default":
        problems.append(f"rope scaling {scaling or rope} (only plain RoPE is supported)")
    if problems:
        raise ConvertError("unsupported HF model: " + "; ".join(problems))
    heads = cfg["num_attention_heads"]
    return {
        "num_layers": cfg["num_hidden_layers"], "hidden_size": cfg["hidden_size"],
        "ffn_hidden_size": cfg["intermediate_size"], "num_attention_heads": heads,
        "num_query_groups": cfg.get("num_key_value_heads") or heads,
        "kv_channels": cfg.get("head_dim") or cfg["hidden_size"] // heads,
        "max_position_embeddings": cfg["max_position_embeddings"],
        "rotary_base": float(cfg.get("rope_theta", rope.get("rope_theta", 10000.0))),
        "norm_epsilon": float(cfg.get("rms_norm_eps", 1e-5)),
        "tie_embeddings": bool(cfg.get("tie_word_embeddings", False)),
        "init_method_std": float(cfg.get("initializer_range", 0.02)),
    }


# ---------------------------------------------------------------- Megatron side

def _rank() -> int:
    import torch

    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def _barrier() -> None:
    import torch

    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def _single_process_model(model_cfg, dtype: str = "fp32"):
    """A TP=PP=1 GPTModel in this process (initialising Megatron's groups if needed).

    ``dtype`` is the parameter dtype: exporting bf16 from a bf16 model halves the memory of an
    fp32 build, and the rounding is the one ``Tensor.to(bfloat16)`` would do anyway.
    """
    from megatron_ext import parallel
    from megatron_ext.model import build_model, torch_dtype, transformer_config

    parallel.initialize(1, 1)
    config = transformer_config(model=model_cfg, params_dtype=torch_dtype(dtype))
    return build_model(model_cfg, config=config).eval()


def read_recipe(ckpt: Path):
    from megatron_ext import checkpoint

    try:
        return checkpoint.read_recipe(ckpt)
    except (checkpoint.CheckpointError, FileNotFoundError) as err:
        raise ConvertError(str(err)) from err


def load_megatron_state(ckpt: Path, recipe, dtype: str = "fp32") -> dict:
    """Full state dict (CPU, ``dtype``) of a dist-checkpoint saved with any TP/PP."""
    import torch

    from megatron_ext import checkpoint

    model = _single_process_model(recipe.model, dtype)
    checkpoint.load_model_only(ckpt, model)
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

        AutoTokenizer.from_pretrained(str(tokenizer_dir)).save_pretrained(str(out))


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


def _tokenizer_ids(tokenizer_dir: Path | None) -> tuple[int, list[int], int | None, int | None]:
    """(bos, eos ids for generation, pad, len(tokenizer)) — Mi:dm's ids when no tokenizer is given."""
    if tokenizer_dir is None:
        return MIDM_BOS, [MIDM_EOS], None, None
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    bos = tok.bos_token_id if tok.bos_token_id is not None else MIDM_BOS
    eos = [tok.eos_token_id if tok.eos_token_id is not None else MIDM_EOS]
    eot = tok.convert_tokens_to_ids(MIDM_EOT) if MIDM_EOT in tok.get_vocab() else None
    if eot is not None and eot not in eos:
        eos.append(eot)
    return bos, eos, tok.pad_token_id, len(tok)


# ---------------------------------------------------------------- commands

def to_hf(ckpt: Path, out: Path, *, tokenizer_dir: Path | None = None, dtype: str | None = None,
          trim_vocab: bool = False, vocab_size: int | None = None, max_shard_size: str = "5GB") -> dict:
    from megatron_ext.hf_mapping import megatron_to_hf

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
    config = hf_config(m, vocab_size=hf_vocab, dtype=dtype, bos_token_id=bos, eos_token_id=eos_ids[0])
    tensors = megatron_to_hf(load_megatron_state(ckpt, recipe, dtype), geometry(m, hf_vocab))
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

    keys = ("num_layers", "hidden_size", "ffn_hidden_size", "num_attention_heads", "num_query_groups",
            "kv_channels", "tie_embeddings")
    candidates = [name] if name else recipe_names()
    for candidate in candidates:
        recipe = get_recipe(candidate)
        if all(getattr(recipe.model, k) == fields[k] for k in keys):
            return recipe, True
    return (get_recipe(name) if name else get_recipe("tiny")), False


def from_hf(hf_dir: Path, out: Path, *, recipe_name: str | None = None, overrides: list[str] | None = None,
            padded_vocab_size: int | None = None) -> dict:
    import torch
    from recipes import apply_overrides

    from megatron_ext.hf_mapping import hf_to_megatron

    started = time.time()
    config, hf_state = read_hf(hf_dir)
    fields = model_fields_from_hf(config)
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
    model = _single_process_model(recipe.model, dtype)  # the HF dtype: no rounding, no doubled memory
    state = hf_to_megatron(hf_state, geometry(recipe.model, hf_vocab), naming=norm_naming(model))
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
    from megatron_ext.model import build_model

    recipe = checkpoint.read_recipe(ckpt)
    recipe.parallel.tensor_model_parallel_size, recipe.parallel.pipeline_model_parallel_size = tp, pp
    parallel.initialize(tp, pp)
    model = build_model(recipe.model, recipe)
    checkpoint.load_model_only(ckpt, model)
    return checkpoint.save(out, 0, model, None, None, recipe, {"iteration": 0, "resharded_from": str(ckpt)})


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="midm convert", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("to-hf", help="Megatron dist-checkpoint (any TP/PP) → HF LlamaForCausalLM safetensors")
    a.add_argument("--checkpoint", required=True, type=Path, help="checkpoint root (follows `latest`) or iter_* dir")
    a.add_argument("--output", required=True, type=Path, help="HF model directory to write")
    a.add_argument("--tokenizer", type=Path, default=None, help="HF tokenizer directory to export with the model")
    a.add_argument("--dtype", choices=sorted(DTYPES), default=None, help="weights dtype (default: the recipe's)")
    a.add_argument("--trim-vocab", action="store_true",
                   help="drop Megatron's vocabulary padding (HF vocab = len(tokenizer)); default keeps the padded "
                        "rows, as the released Mi:dm 2.0 does")
    a.add_argument("--vocab-size", type=int, default=None, help="explicit HF vocab size (≤ padded size)")
    a.add_argument("--max-shard-size", default="5GB", help="safetensors shard size (e.g. 5GB, 500MB)")
    b = sub.add_parser("from-hf", help="HF LlamaForCausalLM (safetensors) → Megatron dist-checkpoint (TP=PP=1)")
    b.add_argument("--hf", required=True, type=Path, help="HF model directory")
    b.add_argument("--output", required=True, type=Path, help="checkpoint root to write (iter_0000000 + latest)")
    b.add_argument("--recipe", default=None, help="recipe for the non-model settings (default: the one whose "
                                                  "geometry matches, else tiny)")
    b.add_argument("--set", dest="overrides", action="append", default=[], metavar="K=V", help="recipe override")
    b.add_argument("--padded-vocab-size", type=int, default=None,
                   help="Megatron vocab rows (default: the recipe's padded size when it fits)")
    c = sub.add_parser("reshard", help="re-save a checkpoint under another TP×PP layout (run under torchrun)")
    c.add_argument("--checkpoint", required=True, type=Path)
    c.add_argument("--output", required=True, type=Path)
    c.add_argument("--tp", type=int, default=1)
    c.add_argument("--pp", type=int, default=1)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    from recipes import RecipeError

    from megatron_ext.hf_mapping import MappingError

    rank0 = True
    try:
        if args.command == "to-hf":
            summary = to_hf(args.checkpoint, args.output, tokenizer_dir=args.tokenizer, dtype=args.dtype,
                            trim_vocab=args.trim_vocab, vocab_size=args.vocab_size, max_shard_size=args.max_shard_size)
        elif args.command == "from-hf":
            summary = from_hf(args.hf, args.output, recipe_name=args.recipe, overrides=args.overrides,
                              padded_vocab_size=args.padded_vocab_size)
        else:
            summary = {"output": str(reshard(args.checkpoint, args.output, args.tp, args.pp))}
        rank0 = _rank() == 0
    except (ConvertError, MappingError, RecipeError, ValueError) as err:
        print(f"midm convert: error: {err}", file=sys.stderr)
        return 2
    finally:
        if "megatron.core" in sys.modules:  # bad input fails before Megatron is ever imported
            from megatron_ext import parallel

            parallel.destroy()
    if rank0:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
