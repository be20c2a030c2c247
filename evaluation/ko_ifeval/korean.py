"""Korean text measurements for the Ko-IFEval instruction checkers.

IFEval's checkers (lm-eval ``lm_eval/tasks/ifeval/instructions_util.py``) count English words with
``\\w+`` and sentences with NLTK's English Punkt model. Korean needs other units:

- a *word* (단어) in a Korean length instruction is an 어절, the space-delimited unit
  ("서울-부산 간 KTX는 2.5시간이 걸린다." is 5 어절, ``\\w+`` finds 7 pieces);
- a *sentence* ends with a final ending (종결어미), often without punctuation ("…먹었다 그리고 …"):
  we split with Kiwi (``kiwipiepy``, ``Kiwi.split_into_sents``), the Korean morphological analyser
  datatrove also uses for Korean;
- a *letter* may be a syllable (가) or a jamo (ㄱ), counted in the NFD-decomposed text;
- a noun in running text carries particles (``서울은``, ``사과를``), so word-boundary regexes
  (``\\b사과\\b``) miss it.

Kiwi is loaded once per process (~2 s), only when a sentence or particle check runs.
"""
from __future__ import annotations

import functools
import re
import unicodedata

HANGUL_SYLLABLE = re.compile(r"[\uac00-\ud7a3]")
_WORDLIKE = re.compile(r"\w")
# Modern compatibility jamo (ㄱ..ㅎ, ㅏ..ㅣ) and their conjoining (NFD) forms.
_COMPAT_CHOSEONG = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_COMPAT_JUNGSEONG = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_COMPAT_JONGSEONG = "ㄱㄲㄳㄴㄵㄶㄷㄹㄺㄻㄼㄽㄾㄿㅀㅁㅂㅄㅅㅆㅇㅈㅊㅋㅌㅍㅎ"


@functools.lru_cache(maxsize=1)
def kiwi():
    """The process-wide Kiwi analyser (kiwipiepy ships its model; nothing is downloaded)."""
    from kiwipiepy import Kiwi

    return Kiwi()


def count_eojeol(text: str) -> int:
    """Number of 어절: whitespace-separated units that contain at least one letter or digit.

    Markdown bullets, dashes and lone punctuation (``-``, ``*``, ``—``) are not words.
    """
    return sum(1 for unit in text.split() if _WORDLIKE.search(unit))


def split_sentences(text: str) -> list[str]:
    """Sentences of a Korean (or mixed) text, by Kiwi's splitter; blank lines split too."""
    out: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        if block.strip():
            out += [s.text.strip() for s in kiwi().split_into_sents(block) if s.text.strip()]
    return out


def count_sentences(text: str) -> int:
    return len(split_sentences(text))


def count_characters(text: str, *, include_spaces: bool) -> int:
    """글자 수 as Korean length limits mean it: every character except line breaks; spaces
    (all Unicode whitespace) only when ``include_spaces`` ("공백 포함")."""
    if include_spaces:
        return len(text.replace("\r", "").replace("\n", ""))
    return sum(1 for ch in text if not ch.isspace())


def _jamo_to_conjoining(letter: str) -> set[str]:
    """All NFD code points a compatibility jamo can decompose to (initial and final forms)."""
    forms: set[str] = set()
    if letter in _COMPAT_CHOSEONG:
        forms.add(chr(0x1100 + _COMPAT_CHOSEONG.index(letter)))
    if letter in _COMPAT_JUNGSEONG:
        forms.add(chr(0x1161 + _COMPAT_JUNGSEONG.index(letter)))
    if letter in _COMPAT_JONGSEONG:
        forms.add(chr(0x11A8 + _COMPAT_JONGSEONG.index(letter)))
    return forms


def is_jamo(letter: str) -> bool:
    return len(letter) == 1 and bool(_jamo_to_conjoining(letter))


def count_letter(text: str, letter: str) -> int:
    """Occurrences of ``letter``: a Latin letter (case-insensitive), a Hangul syllable, or a
    jamo counted inside syllables (``ㄱ`` occurs twice in ``각``: as initial and final)."""
    if is_jamo(letter):
        forms = _jamo_to_conjoining(letter) | {letter}
        return sum(1 for ch in unicodedata.normalize("NFD", text) if ch in forms)
    return text.lower().count(letter.lower())


# Particles (조사, Sejong tags J*), the copula 이다 (VCP) and endings (E*) may follow a noun inside
# one 어절 without changing which word it is ("서울은", "서울이다", "서울에서도").
_ATTACHED_TAGS = re.compile(r"^(J|VCP|E|XSN)")


def first_word_matches(eojeol: str, word: str) -> bool:
    """Whether an 어절 *is* ``word``, allowing particles, copula or endings after it.

    ``서울은`` / ``서울이다`` match ``서울``; ``서울특별시는`` does not (a different noun).
    Latin words compare case-insensitively with surrounding punctuation removed.
    """
    unit = eojeol.strip().strip("'\"“”‘’.,!?:;()[]「」『』*")
    target = word.strip()
    if unit.casefold() == target.casefold():
        return True
    if not target or not unit.startswith(target):
        return False
    tokens = kiwi().tokenize(unit)
    # Kiwi must end a morpheme exactly after `word`, and put only attached morphemes after it.
    boundary = any(t.start + t.len == len(target) for t in tokens)
    after = [t for t in tokens if t.start >= len(target)]
    return boundary and bool(after) and all(_ATTACHED_TAGS.match(t.tag) for t in after)


def contains_word(text: str, word: str) -> bool:
    """Whether ``word`` occurs as a word of ``text``: at the start of an 어절 (particles and
    endings may follow: ``사과를`` contains ``사과``); Latin words need a word boundary on
    both sides (``cat`` is not in ``concatenate``)."""
    if HANGUL_SYLLABLE.search(word):
        return re.search(r"(?<![\w])" + re.escape(word), text) is not None
    return re.search(r"\b" + re.escape(word) + r"\b", text, flags=re.IGNORECASE) is not None


# 존댓말: 합쇼체 (-습니다/-ㅂ니다/-습니까/-십시오) and 해요체 (…요, -죠), read on the sentence's
# final ending (Kiwi tag EF) or the polite particle 요 (JX) after it.
_POLITE_END = re.compile(r"(요|니다|니까|시오|죠)$")


def sentence_is_polite(sentence: str) -> bool | None:
    """True for 존댓말, False for 반말 / 해라체, None when the sentence has no final ending
    (a list item ending in a noun, a number, an English quote): such sentences are not judged."""
    tokens = [t for t in kiwi().tokenize(sentence) if not t.tag.startswith(("S", "W"))]  # punct., symbols, foreign
    if not tokens:
        return None
    last = tokens[-1]
    if last.tag == "JX" and last.form == "요":
        return True
    if last.tag not in ("EF", "EC"):  # Kiwi tags a final ending EC when no punctuation follows
        return None
    surface = sentence[: last.start + last.len]
    return _POLITE_END.search(surface) is not None or _POLITE_END.search(last.form) is not None
