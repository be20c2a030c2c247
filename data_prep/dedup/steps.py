"""Configuration of datatrove's exact-hash and MinHash dedup for our pipeline.

FineWeb-2's Korean settings: word 5-grams, 14 buckets × 8 hashes, 64-bit hashes. Words come
from a whitespace tokenizer over datatrove's ``simplify_text`` (lower-cased, punctuation and
digits normalised): Korean eojeols are good shingle units and this avoids running Kiwi a
second time (MinHash only needs a stable segmentation, not a linguistic one). Documents too
short for one 5-gram produce no signature; exact dedup (hash of the whitespace-normalised
text) is what removes repeated short comments.

:class:`MinhashSignature` is datatrove's ``MinhashDedupSignature`` with the same shingles made
faster: :func:`simplify_text` returns exactly datatrove's ``simplify_text`` (tested against it)
but replaces its three per-character Python/dict passes (punctuation ``str.translate``, the
``\\s+`` substitution, the ``unicodedata.category`` filter over the NFD text, which triples
Hangul into jamo) with C-level ones: ~4.5 → ~1.2 CPU-s on the 19,890-document default corpus.
The signatures, hence the near-duplicates, are bit-identical.
"""
from __future__ import annotations

import re
import unicodedata

import numpy as np
from datatrove.data import Document
from datatrove.pipeline.dedup.minhash import MinhashDedupSignature
from datatrove.utils.text import (DEF_TEXT_NORM_CONFIG, MONTHS_PATTERN, NUMBERS_PATTERN, PUNCTUATION_TRANS,
                                  WEEKDAYS_PATTERN, TextNormConfig)
from datatrove.utils.word_tokenizers import WordTokenizer

# datatrove's punctuation table as one character class when every entry maps to a space (it does):
# re.sub scans in C where str.translate with a dict looks up every non-ASCII character
_PUNCT = (re.compile("[" + "".join(re.escape(chr(c)) for c in sorted(PUNCTUATION_TRANS)) + "]")
          if set(PUNCTUATION_TRANS.values()) == {ord(" ")} else None)
_CHECKED: set[str] = set()  # characters whose canonical decomposition (NFD) has been looked at …
_MARKED: set[str] = set()   # … those of them with a nonspacing mark (category Mn) in it …
_MARKS: set[str] = set()    # … and those marks


class WhitespaceWordTokenizer(WordTokenizer):
    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return [s for s in text.split("\n") if s.strip()]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def _nfd_without_marks(text: str) -> str:
    """``unicodedata.normalize("NFD", text)`` without its category-Mn characters, as datatrove's generator
    makes it, but ``unicodedata.category`` is asked once per distinct character (cached) rather than
    once per character. NFD maps each character to its own decomposition (then reorders marks), so the
    decompositions of the characters of ``text`` hold every mark NFD can produce: most texts have none."""
    chars = set(text)
    new = chars - _CHECKED
    if new:
        for c in new:
            marks = [d for d in unicodedata.normalize("NFD", c) if unicodedata.category(d) == "Mn"]
            if marks:
                _MARKS.update(marks)  # before _MARKED and _CHECKED: a concurrent reader sees them all
                _MARKED.add(c)
        _CHECKED.update(new)
    nfd = unicodedata.normalize("NFD", text)
    if chars.isdisjoint(_MARKED):
        return nfd
    return nfd.translate(dict.fromkeys(map(ord, _MARKS)))


def simplify_text(text: str, config: TextNormConfig = DEF_TEXT_NORM_CONFIG) -> str:
    """Exactly ``datatrove.utils.text.simplify_text(text, config)`` (same steps, same order), faster.

    ``\\s`` in ``re`` and ``str.split``/``str.strip`` use the same whitespace test
    (``Py_UNICODE_ISSPACE``), so ``" ".join(text.split())`` is the ``\\s+`` → ``" "`` substitution of
    the stripped text.
    """
    if config.lowercase:
        text = text.lower()
    if config.norm_numbers:
        text = NUMBERS_PATTERN.sub("0", text)
    if config.norm_weekdays:
        text = WEEKDAYS_PATTERN.sub("WEEKDAY", text)
    if config.norm_monthnames:
        text = MONTHS_PATTERN.sub("MONTH", text)
    if config.remove_punctuation:
        text = _PUNCT.sub(" ", text) if _PUNCT is not None else text.translate(PUNCTUATION_TRANS)
    if config.norm_whitespace:
        text = " ".join(text.split())
    if config.norm_unicode_diacritics:
        text = _nfd_without_marks(text)
    return text.strip()


_MERSENNE_61 = np.uint64((1 << 61) - 1)  # datatrove's modulus for the permutations (its ``_mersenne_prime``)
_SHIFT_61 = np.uint64(61)


class MinhashSignature(MinhashDedupSignature):
    """datatrove's MinHash signature step (stage 1) with :func:`simplify_text`: identical shingles,
    and the same signatures computed with cheaper array operations."""

    def get_signature(self, shingles: np.ndarray) -> list[list[int]]:
        """``num_buckets`` lists of ``hashes_per_bucket`` ints, as datatrove's ``get_signature``:
        ``min over shingles of ((shingle * a + b) mod (2**61 - 1))`` per hash function.

        The uint64 ``%`` (~60 % of datatrove's time) is replaced by the Mersenne reduction
        ``x mod p = (x & p) + (x >> 61)`` (exact for x < 2**64, result ≤ p + 7) and one conditional
        subtraction done as ``minimum(y, y - p)`` (unsigned wrap-around makes ``y - p`` huge when
        ``y < p``); ``np.split`` by a reshape."""
        a, b = self.parameters
        x = shingles * a + b
        phv = np.bitwise_and(x, _MERSENNE_61)
        phv += np.right_shift(x, _SHIFT_61, out=x)
        np.minimum(phv, np.subtract(phv, _MERSENNE_61, out=x), out=phv)
        if self.config.hash_config.precision == 32:
            phv = np.bitwise_and(phv, self.config.hash_config.max)
        signature = np.min(phv, axis=0).astype(self.config.hash_config.np_dtype)
        return signature.reshape(self.config.num_buckets, -1).tolist()

    def get_shingles(self, text: str) -> np.ndarray:
        """Hashed word n-grams of the simplified text, shape (n-grams, 1), uint64 — as datatrove's
        ``MinhashDedupSignature.get_shingles`` (its ``ngrams`` zip of ``tee`` copies, here a zip of
        shifted word lists, joined and hashed by ``map``: no Python frame per n-gram; for 64-bit
        xxhash the ``xxhash`` function itself rather than datatrove's one-line wrapper of it)."""
        words = self.word_tokenizer.word_tokenize(simplify_text(text, self.config.norm_config))
        n = self.config.n_grams
        count = max(0, len(words) - n + 1)
        grams = map(" ".join, zip(*(words[k:] for k in range(n))))
        return np.fromiter(map(self._fast_hash, grams), dtype=np.uint64, count=count).reshape((-1, 1))

    @property
    def _fast_hash(self):
        """``self._hash_func``, unwrapped when it is datatrove's ``xxhash64`` (= ``xxh64_intdigest``)."""
        from datatrove.utils.hashes.xxhash import xxhash64

        if self._hash_func is xxhash64:
            import xxhash

            return xxhash.xxh64_intdigest
        return self._hash_func


def exact_content(doc: Document) -> str:
    """Whitespace-normalised text: what counts as 'the same document' for exact dedup.

    ``" ".join(text.split())`` is ``re.sub(r"\\s+", " ", text).strip()`` (same whitespace test), faster."""
    return " ".join(doc.text.split())


def minhash_config(cfg: dict):
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.utils.hashing import HashConfig

    return MinhashConfig(n_grams=cfg.get("n_grams", 5), num_buckets=cfg.get("num_buckets", 14),
                         hashes_per_bucket=cfg.get("hashes_per_bucket", 8),
                         hash_config=HashConfig(precision=cfg.get("hash_bits", 64)))


def exact_config():
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig

    return ExactDedupConfig(content_getter=exact_content)
