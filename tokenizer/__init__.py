"""Korean-optimized tokenizer: train (SentencePiece BPE + byte fallback in Mi:dm's id layout),
evaluate against offline baselines, export to Hugging Face.

Imports are lazy so that ``import tokenizer`` (and ``midm --help``) pulls in nothing heavy.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .api import MidmTokenizer

__all__ = ["load_tokenizer", "MidmTokenizer"]


def load_tokenizer(path) -> "MidmTokenizer":
    """Open a directory written by ``midm tokenizer train`` (or ``export``)."""
    from .api import load_tokenizer as _load

    return _load(path)


def __getattr__(name: str) -> Any:
    if name == "MidmTokenizer":
        from .api import MidmTokenizer

        return MidmTokenizer
    raise AttributeError(f"module 'tokenizer' has no attribute {name!r}")
