"""Hugging Face conversion: the mapping engine (``mapping.py``), the architecture registry
(``registry.py``) and one module per registered architecture (``llama.py``)."""
from megatron_ext.hf.registry import HF_DTYPES, ConvertError, HFArchitecture, SpecialTokens, get_architecture, register

__all__ = ["HF_DTYPES", "ConvertError", "HFArchitecture", "SpecialTokens", "get_architecture", "register"]
