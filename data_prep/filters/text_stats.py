"""One-pass document statistics for the Gopher/C4/FineWeb-2 rule family.

DESIGN.md measured datatrove's Gopher repetition filter at minutes per long Korean statute: it
re-tokenises and rescans the document once per n. Here each document is segmented **once**
(whitespace words — eojeol — for Korean, regex words for English, both one C-level regex pass),
words are mapped to integer ids, and every n-gram statistic comes from vectorised rolling hashes
over that id array:

* top n-gram character fraction (n = 2..4): characters covered by the most frequent n-gram;
* duplicated n-gram character fraction (n = 5..10): characters of words inside any n-gram
  that occurs more than once, each character counted once (Gopher's definition);

plus line/paragraph duplication, punctuation and symbol ratios. Cost is O(words) per n.

Kiwi morphemes are needed for one Korean statistic only, the stop-word (function-morpheme)
count, and only when it decides: :func:`ko_function_words` finds the unambiguous particles and
``있`` forms with one regex pass, and the heuristics stage asks Kiwi (:meth:`Segmenter.kiwi_stopwords`)
only for documents that this cheap count would reject (README "Throughput" has the measurements).
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

_EN_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?|[^\s\w]", re.UNICODE)
# Korean words: eojeols, also cut at punctuation ("다행이에요.회복해서!" is two words)
_EOJEOL = re.compile(r"[^\W_]+")
# Korean function morphemes that are unambiguous on the surface: a case particle closing an
# eojeol (after a syllable, before a non-syllable), 것/수 as bound nouns, 있 as a verb stem
# (measured against Kiwi: README "Throughput"). Each pattern starts with the morpheme and checks
# the character before it with a lookbehind placed after it (fixed width, hence two particle
# patterns): sre then skips to the morpheme's characters in C instead of trying every position,
# half the time of the lookbehind-first form, same matches.
_KO_FUNCTION = (
    re.compile(r"[을를은는에와과의](?<=[가-힣].)(?![가-힣])"),
    re.compile(r"(?:에서|으로)(?<=[가-힣]..)(?![가-힣])"),
    re.compile(r"[것수](?<![가-힣].)(?=[이을은도]?(?![가-힣]))"),
    re.compile(r"있(?<![가-힣].)(?=[다는어고었을으습지])"),
)
_TERMINAL = tuple(".!?…。！？\"'”’)」』")
# Korean sentence-final endings count as terminated lines even without punctuation
_KO_FINAL = re.compile(r"(다|요|죠|까|니다|습니다|세요|네|군|라|자)[.!?…~]*$")
_BULLET = re.compile(r"^\s*([•●○◦▪■□◆◇▶▷►\-*·]|\d+[.)])\s")
_PUNCT_TAGS = {"SF", "SP", "SS", "SE", "SO", "SW", "SSO", "SSC", "W_URL", "W_EMAIL", "W_HASHTAG", "W_MENTION"}
_P = np.uint64(1_000_003)


@dataclass
class DocStats:
    n_chars: int
    n_words: int
    n_lines: int
    mean_word_len: float
    alpha_word_frac: float
    symbol_word_ratio: float
    stopwords_found: int
    bullet_line_frac: float
    ellipsis_line_frac: float
    terminal_line_frac: float
    short_line_frac: float
    dup_line_frac: float
    dup_para_frac: float
    dup_line_char_frac: float
    dup_para_char_frac: float
    newline_word_ratio: float
    top_ngram_char_frac: dict[int, float] = field(default_factory=dict)
    dup_ngram_char_frac: dict[int, float] = field(default_factory=dict)


class _NgramHashes:
    """Polynomial hashes of a document's word-id n-grams, each n from the (n-1)-grams' in one pass:
    ``h_n[i] = h_{n-1}[i] * P + ids[i + n - 1]`` (mod 2**64), the same values as hashing every n from scratch."""

    def __init__(self, ids: np.ndarray):
        self.ids, self.h, self.n = ids, ids, 1

    def __call__(self, n: int) -> np.ndarray:
        with np.errstate(over="ignore"):
            while self.n < n:
                self.h = self.h[:-1] * _P + self.ids[self.n:]
                self.n += 1
        return self.h


def ngram_stats(words: list[str], top_ns=(2, 3, 4), dup_ns=(5, 6, 7, 8, 9, 10)) -> tuple[dict, dict]:
    """Gopher's n-gram repetition statistics in O(len(words) log len(words)) per n, vectorised.

    An n-gram that occurs twice contains an (n-1)-gram that does, so once some n has no repeated
    n-gram every larger n's fractions are 0 without computing them; a document whose words are all
    distinct (80 % of the default corpus: short comments) needs no array at all. Each n's hashes
    extend the previous n's; one argsort per n groups equal n-grams (``np.unique`` did the same sort
    and more: README "Throughput").
    """
    if not words:
        return {}, {}
    if len(set(words)) == len(words):
        return ({n: 0.0 for n in top_ns if len(words) >= n}, {n: 0.0 for n in dup_ns if len(words) >= n})
    # word ids in order of first occurrence (a dict: no sort of a string array, half the time of np.unique's);
    # the statistics depend only on which n-grams are equal, not on the ids' values
    first_seen = dict.fromkeys(words)
    for i, word in enumerate(first_seen, 1):
        first_seen[word] = i
    n_words = len(words)
    ids = np.fromiter(map(first_seen.__getitem__, words), dtype=np.uint64, count=n_words)
    lens = np.fromiter(map(len, words), dtype=np.int64, count=n_words)
    total = float(lens.sum()) or 1.0
    hashes = _NgramHashes(ids)
    top, dup = {}, {}
    no_repeat_from = n_words + 1  # smallest n seen without a repeated n-gram
    for n in top_ns:
        if n_words < n:
            continue
        if n >= no_repeat_from:
            top[n] = 0.0
            continue
        h = hashes(n)
        order = np.argsort(h, kind="stable")  # stable: each group of equal n-grams starts at its first occurrence
        sorted_h = h[order]
        bounds = np.flatnonzero(np.concatenate(([True], sorted_h[1:] != sorted_h[:-1], [True])))
        counts = np.diff(bounds)
        most = counts.max()
        if most <= 1:
            top[n] = 0.0
            no_repeat_from = min(no_repeat_from, n)
            continue
        cs = np.concatenate([[0], np.cumsum(lens)])
        first = order[bounds[:-1][counts == most]]  # ties: the one covering most characters
        top[n] = float(most * (cs[first + n] - cs[first]).max()) / total
    for n in dup_ns:
        if n_words < n:
            continue
        if n >= no_repeat_from:
            dup[n] = 0.0
            continue
        h = hashes(n)
        order = np.argsort(h)
        sorted_h = h[order]
        equal_next = sorted_h[1:] == sorted_h[:-1]
        if not equal_next.any():
            dup[n] = 0.0
            no_repeat_from = min(no_repeat_from, n)
            continue
        repeated = np.zeros(len(h), dtype=bool)
        repeated[1:] = equal_next
        repeated[:-1] |= equal_next
        starts = order[repeated]  # every start of an n-gram that occurs more than once
        cover = np.bincount(starts, minlength=n_words + 1) - np.bincount(starts + n, minlength=n_words + 1)
        covered = np.cumsum(cover[:-1]) > 0
        dup[n] = float(lens[covered].sum()) / total
    return top, dup


def _dup_frac(items: list[str]) -> tuple[float, float]:
    items = [x for x in items if x.strip()]
    if not items:
        return 0.0, 0.0
    counts = Counter(items)
    dup_items = sum(c - 1 for c in counts.values() if c > 1)
    dup_chars = sum(len(x) * (c - 1) for x, c in counts.items() if c > 1)
    return dup_items / len(items), dup_chars / max(1, sum(map(len, items)))


def ko_function_words(text: str) -> set[str]:
    """The distinct Korean function morphemes (Kiwi forms) visible without analysis, one regex pass each.

    A lower bound of what Kiwi finds among the stop words (a particle form such as ``이``/``가``/
    ``도`` also ends many nouns, so those are left to Kiwi); used to skip Kiwi when it suffices.
    """
    return {m for p in _KO_FUNCTION for m in p.findall(text)}


class Segmenter:
    """Eojeol (whitespace) words for Korean, regex words for everything else; Kiwi on demand.

    Kiwi (cong model, ~30–35 k characters per CPU-second measured here) used to segment every
    Korean document and was most of the filter's time; now it only confirms a stop-word rejection,
    on the first ``kiwi_max_chars`` characters (cut at a line break). Line- and paragraph-level
    statistics always use the whole document.
    """

    def __init__(self, kiwi_max_chars: int = 4000):
        self.kiwi_max_chars = kiwi_max_chars
        self._kiwi = None

    def sample(self, text: str, lang: str) -> str:
        """The part of ``text`` that word statistics are computed on."""
        if lang != "ko" or len(text) <= self.kiwi_max_chars:
            return text
        cut = text.rfind("\n", 0, self.kiwi_max_chars)
        return text[: cut if cut > self.kiwi_max_chars // 2 else self.kiwi_max_chars]

    def words(self, text: str, lang: str) -> list[str]:
        """Words of ``text``: eojeols without edge punctuation (``ko``) or regex words/punctuation."""
        return _EOJEOL.findall(text) if lang == "ko" else _EN_WORD.findall(text)

    def kiwi_stopwords(self, text: str, stopwords: frozenset[str]) -> int:
        """How many of ``stopwords`` occur as Kiwi morpheme forms in the sample of Korean ``text``."""
        if self._kiwi is None:
            from data_prep.kiwi_shared import shared_kiwi

            self._kiwi = shared_kiwi()
        forms = {tok.form for tok in self._kiwi.tokenize(self.sample(text, "ko")) if tok.tag not in _PUNCT_TAGS}
        return len(stopwords & forms)


def compute_stats(text: str, words_raw: list[str], stopwords: frozenset[str], short_line_chars: int = 30,
                  word_text: str | None = None, top_ns=(2, 3, 4), dup_ns=(5, 6, 7, 8, 9, 10),
                  stopwords_found: int | None = None, clean_words: bool = False) -> DocStats:
    """``words_raw`` marks punctuation tokens with a leading NUL (they are not words).

    ``word_text`` is the part of ``text`` the words came from (word-relative ratios use it).
    ``top_ns``/``dup_ns``: the n-gram sizes to compute (the heuristics stage asks only for the
    ones its rules check; the others are absent from the dicts). ``stopwords_found``: a count
    made elsewhere (Korean: :func:`ko_function_words` or Kiwi) instead of matching ``words``.
    ``clean_words``: ``words_raw`` are all alphanumeric runs (Korean eojeols), nothing to drop.
    """
    word_text = text if word_text is None else word_text
    words = words_raw if clean_words else [
        w for w in words_raw if not w.startswith("\x00") and not (len(w) == 1 and not w.isalnum())]
    lines = [ln for ln in text.split("\n") if ln.strip()]
    paras = [p for p in re.split(r"\n\s*\n", text) if p.strip()]
    n_words = len(words) or 1
    n_lines = len(lines) or 1
    symbols = word_text.count("#") + word_text.count("...") + word_text.count("…")
    # an alphanumeric word without a letter is numeric (str.isalnum = isalpha or isnumeric …)
    alpha = (len(words) - sum(map(str.isnumeric, words))) if clean_words else sum(
        1 for w in words if any(c.isalpha() for c in w))
    dup_line, dup_line_chars = _dup_frac(lines)
    dup_para, dup_para_chars = _dup_frac(paras)
    top, dup = ngram_stats(words, top_ns, dup_ns)
    terminal = sum(1 for ln in lines if ln.rstrip().endswith(_TERMINAL) or _KO_FINAL.search(ln.rstrip()))
    return DocStats(
        n_chars=len(text), n_words=len(words), n_lines=len(lines),
        mean_word_len=sum(map(len, words)) / n_words,
        alpha_word_frac=alpha / n_words,
        symbol_word_ratio=symbols / n_words,
        stopwords_found=len(stopwords.intersection(words)) if stopwords_found is None else stopwords_found,
        bullet_line_frac=sum(1 for ln in lines if _BULLET.match(ln)) / n_lines,
        ellipsis_line_frac=sum(1 for ln in lines if ln.rstrip().endswith(("...", "…"))) / n_lines,
        terminal_line_frac=terminal / n_lines,
        short_line_frac=sum(1 for ln in lines if len(ln) < short_line_chars) / n_lines,
        dup_line_frac=dup_line, dup_para_frac=dup_para,
        dup_line_char_frac=dup_line_chars, dup_para_char_frac=dup_para_chars,
        newline_word_ratio=word_text.count("\n") / n_words,
        top_ngram_char_frac=top, dup_ngram_char_frac=dup,
    )
