"""Kiwi morpheme-boundary marking for training text (an ablation option, off by default).

SentencePiece never merges across its ``pretokenization_delimiter``; marking the boundaries Kiwi
finds inside Korean words (between a stem and its particles/endings) makes the learned vocabulary
morpheme-shaped. The delimiter exists only in the training file: encoding still runs on raw text,
so the SentencePiece model and the HF export stay identical and round trips stay exact.
"""
from __future__ import annotations

import functools
from collections.abc import Sequence

from data_prep.hangul import is_hangul_syllable

DELIMITER = "\u241f"  # SYMBOL FOR UNIT SEPARATOR: never in real text, removed by SentencePiece


@functools.lru_cache(maxsize=2)
def _kiwi(num_workers: int):
    """Loading Kiwi's model takes seconds: share one instance per worker count."""
    try:
        from kiwipiepy import Kiwi
    except ImportError as err:  # kiwipiepy is in the "tokenizer" extra
        raise RuntimeError("pretokenize='kiwi' needs kiwipiepy: pip install kiwipiepy") from err
    return Kiwi(num_workers=num_workers)


class KiwiMarker:
    """Callable that marks morpheme boundaries inside Hangul runs of each line."""

    def __init__(self, num_workers: int = -1) -> None:  # -1: all cores (0 would be single-thread mode)
        self._kiwi = _kiwi(num_workers)

    def mark(self, line: str, tokens) -> str:
        cuts, prev_end = [], 0
        for tok in tokens:
            s = tok.start
            if 0 < s < len(line) and s >= prev_end and is_hangul_syllable(line[s - 1]) and is_hangul_syllable(line[s]):
                cuts.append(s)
            prev_end = max(prev_end, tok.start + tok.len)
        if not cuts:
            return line
        parts, last = [], 0
        for c in cuts:
            parts.append(line[last:c])
            last = c
        parts.append(line[last:])
        return DELIMITER.join(parts)

    def __call__(self, lines: Sequence[str]) -> list[str]:
        return [self.mark(line, toks) for line, toks in zip(lines, self._kiwi.tokenize(list(lines)))]
