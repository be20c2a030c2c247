"""One registered record per Hugging Face architecture, looked up by ``config.json``'s ``model_type``.

A record holds everything conversion needs to know about one architecture: its tensor table
(``hf.mapping.Rule`` s), how a recipe's ``ModelConfig`` becomes its ``config.json`` and back, and the
special-token facts written into ``generation_config.json``. ``hf_convert.py`` knows no architecture
by name; a second architecture is one new module that calls :func:`register` (the pattern of
Megatron-Bridge's ``@register_bridge`` records and torchtitan's per-model ``state_dict_adapter``).
Torch-free: importable by tools that only read configs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from midm.errors import MidmError

# recipe precision ↔ config.json "torch_dtype"
HF_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


class ConvertError(MidmError, RuntimeError):
    """A user-fixable conversion problem; the message says what to do."""


@dataclass(frozen=True)
class SpecialTokens:
    """Ids written to ``config.json`` / ``generation_config.json`` when no tokenizer is given, and the
    end-of-turn token that chat generation must also stop at."""

    bos_id: int
    eos_id: int
    eot_token: str | None = None


@dataclass(frozen=True)
class HFArchitecture:
    """Everything conversion knows about one HF architecture.

    ``to_hf_config(model_cfg, vocab_size=, dtype=, bos_token_id=, eos_token_id=)`` returns the
    ``config.json`` dict (keys in ``config_fields`` order); ``from_hf_config(cfg)`` returns
    ``ModelConfig`` field values and raises :class:`ConvertError` for what our GPT model cannot
    represent.
    """

    model_type: str
    architectures: tuple[str, ...]
    rules: tuple  # tuple[hf.mapping.Rule, ...]
    config_fields: tuple[str, ...]
    to_hf_config: Callable[..., dict[str, Any]]
    from_hf_config: Callable[[dict[str, Any]], dict[str, Any]]
    special_tokens: SpecialTokens


_REGISTRY: dict[str, HFArchitecture] = {}


def register(arch: HFArchitecture) -> HFArchitecture:
    """Add ``arch`` to the registry (one record per ``model_type``)."""
    if arch.model_type in _REGISTRY:
        raise ValueError(f"HF architecture {arch.model_type!r} registered twice")
    _REGISTRY[arch.model_type] = arch
    return arch


def _load_builtin() -> None:
    from megatron_ext.hf import llama  # noqa: F401  (registers itself)


def get_architecture(model_type: str | None) -> HFArchitecture:
    """The record for ``model_type``.

    Raises:
        ConvertError: no architecture of that type is registered (the message lists those that are).
    """
    _load_builtin()
    if model_type not in _REGISTRY:
        raise ConvertError(f"unsupported HF model: model_type {model_type!r} (need one of "
                           f"{', '.join(repr(k) for k in sorted(_REGISTRY))})")
    return _REGISTRY[model_type]


def registered() -> list[str]:
    """The registered ``model_type`` names."""
    _load_builtin()
    return sorted(_REGISTRY)
