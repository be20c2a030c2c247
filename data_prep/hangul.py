"""The one Hangul check: how much of a text's letters are Korean script, and which language wins.

Used by the language-ID stage (``data_prep/filters/langid.py``), the tokenizer's Korean/English
weighting (``tokenizer/corpus.py``) and its Kiwi pre-segmentation (``tokenizer/kiwi_seg.py``), and
the demo's held-out split (``midm/demo_stages.py``).
Hangul = syllables U+AC00–U+D7A3, conjoining jamo U+1100–U+11FF and compatibility jamo
U+3130–U+318F (so ``ㅋㅋ`` and NFD text count); Latin = ASCII letters. Pure Python, no imports
beyond the standard library: the tokenizer uses it without the data pipeline's dependencies.
"""
from __future__ import annotations

import re
from typing import NamedTuple

_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")
_LATIN = re.compile(r"[A-Za-z]")
_LETTER = re.compile(r"[^\W\d_]")  # str.isalpha, up to a few numeric symbols such as "²"
_HANGUL_RUN, _LATIN_RUN, _LETTER_RUN = (re.compile(p.pattern + "+") for p in (_HANGUL, _LATIN, _LETTER))


class ScriptCounts(NamedTuple):
    hangul: int   # Hangul letters (syllables + jamo)
    latin: int    # ASCII letters
    letters: int  # every letter (any script), Hangul and Latin included


def is_hangul(ch: str) -> bool:
    """A Hangul letter: syllable or jamo."""
    return _HANGUL.match(ch) is not None


def is_hangul_syllable(ch: str) -> bool:
    """A precomposed syllable (U+AC00–U+D7A3): where Kiwi morpheme boundaries fall inside words."""
    return "\uac00" <= ch <= "\ud7a3"


def count_scripts(text: str) -> ScriptCounts:
    """Letters of ``text`` by script (regular expressions: C speed on long texts).

    Each class is counted as the total length of its runs: one string per word rather than one per
    letter (a third less time than ``len(findall)`` of single letters), the same counts."""
    return ScriptCounts(sum(map(len, _HANGUL_RUN.findall(text))), sum(map(len, _LATIN_RUN.findall(text))),
                        sum(map(len, _LETTER_RUN.findall(text))))


def hangul_ratio(text: str) -> tuple[float, int]:
    """(Hangul share of the letters, number of letters); 0.0 for a text without letters."""
    c = count_scripts(text)
    return (c.hangul / c.letters if c.letters else 0.0), c.letters


def script_language(text: str) -> str:
    """``ko`` when Hangul letters are at least as many as Latin ones (and present), ``en`` when
    Latin letters dominate, else ``other`` (digits, punctuation, other scripts only)."""
    c = count_scripts(text)
    if c.hangul and c.hangul >= c.latin:
        return "ko"
    if c.latin > c.hangul:
        return "en"
    return "other"
