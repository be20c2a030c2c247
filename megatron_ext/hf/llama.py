"""``LlamaForCausalLM`` ↔ Megatron-Core GPT (RMSNorm, SwiGLU, RoPE, GQA, no biases): Mi:dm 2.0's architecture.

The released Mi:dm 2.0 checkpoints are ``LlamaForCausalLM`` with ``head_dim`` 128 set explicitly
(Mini: hidden 1792 with 32 heads × 128), padded vocabulary 131,392, RoPE θ 8,000,000; the config
fields written here are exactly those of the released Mini ``config.json``.
"""
from __future__ import annotations

from typing import Any

from megatron_ext.hf.mapping import Rule
from megatron_ext.hf.registry import HF_DTYPES, ConvertError, HFArchitecture, SpecialTokens, register
from tokenizer.layout import BOS_ID, EOS_ID, EOT

_L = "model.layers.{L}."
_M = "decoder.layers.{L}."
RULES: tuple[Rule, ...] = (
    Rule(("model.embed_tokens.weight",), "embedding.word_embeddings.weight", "vocab"),
    Rule((_L + "input_layernorm.weight",), _M + "self_attention.linear_qkv.layer_norm_weight",
         local_alias=_M + "input_layernorm.weight", per_layer=True),
    Rule((_L + "self_attn.q_proj.weight", _L + "self_attn.k_proj.weight", _L + "self_attn.v_proj.weight"),
         _M + "self_attention.linear_qkv.weight", "qkv", per_layer=True),
    Rule((_L + "self_attn.o_proj.weight",), _M + "self_attention.linear_proj.weight", per_layer=True),
    Rule((_L + "post_attention_layernorm.weight",), _M + "mlp.linear_fc1.layer_norm_weight",
         local_alias=_M + "pre_mlp_layernorm.weight", per_layer=True),
    Rule((_L + "mlp.gate_proj.weight", _L + "mlp.up_proj.weight"), _M + "mlp.linear_fc1.weight", "fc1",
         per_layer=True),
    Rule((_L + "mlp.down_proj.weight",), _M + "mlp.linear_fc2.weight", per_layer=True),
    Rule(("model.norm.weight",), "decoder.final_layernorm.weight"),
    Rule(("lm_head.weight",), "output_layer.weight", "vocab", untied_only=True),
)

# Exactly the fields (and order) of the released Mi:dm 2.0 Mini config.json.
CONFIG_FIELDS = (
    "architectures", "model_type", "num_hidden_layers", "hidden_size", "intermediate_size",
    "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_act", "attention_bias", "mlp_bias",
    "vocab_size", "tie_word_embeddings", "rope_theta", "rope_scaling", "max_position_embeddings",
    "rms_norm_eps", "initializer_range", "bos_token_id", "eos_token_id", "torch_dtype",
)


def _number(x: float) -> float | int:
    return int(x) if float(x).is_integer() else float(x)


def to_hf_config(model_cfg, *, vocab_size: int, dtype: str = "bf16", bos_token_id: int = BOS_ID,
                 eos_token_id: int = EOS_ID) -> dict[str, Any]:
    """``config.json`` for a recipe's ``ModelConfig``: the released model's fields, nothing else."""
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
        "torch_dtype": HF_DTYPES[dtype],
    }
    return {k: values[k] for k in CONFIG_FIELDS}


def from_hf_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """``ModelConfig`` fields from a Llama ``config.json``.

    Raises:
        ConvertError: activation other than SiLU, biases, or RoPE scaling (our GPT model has none).
    """
    problems = []
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


LLAMA = register(HFArchitecture(
    model_type="llama", architectures=("LlamaForCausalLM",), rules=RULES, config_fields=CONFIG_FIELDS,
    to_hf_config=to_hf_config, from_hf_config=from_hf_config,
    special_tokens=SpecialTokens(bos_id=BOS_ID, eos_id=EOS_ID, eot_token=EOT)))
