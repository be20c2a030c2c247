"""Configuration of datatrove's exact-hash and MinHash dedup for our pipeline.

FineWeb-2's Korean settings: word 5-grams, 14 buckets × 8 hashes, 64-bit hashes. Words come
from a whitespace tokenizer over datatrove's ``simplify_text`` (lower-cased, punctuation and
digits normalised): Korean eojeols are good shingle units and this avoids running Kiwi a
second time (MinHash only needs a stable segmentation, not a linguistic one). Documents too
short for one 5-gram produce no signature; exact dedup (hash of the whitespace-normalised
text) is what removes repeated short comments.
"""
from __future__ import annotations

import re

from datatrove.data import Document
from datatrove.utils.word_tokenizers import WordTokenizer

_WS = re.compile(r"\s+")


class WhitespaceWordTokenizer(WordTokenizer):
    def word_tokenize(self, text: str) -> list[str]:
        return text.split()

    def sent_tokenize(self, text: str) -> list[str]:
        return [s for s in text.split("\n") if s.strip()]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]


def exact_content(doc: Document) -> str:
    """Whitespace-normalised text: what counts as 'the same document' for exact dedup."""
    return _WS.sub(" ", doc.text).strip()


def minhash_config(cfg: dict):
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.utils.hashing import HashConfig

    return MinhashConfig(n_grams=cfg.get("n_grams", 5), num_buckets=cfg.get("num_buckets", 14),
                         hashes_per_bucket=cfg.get("hashes_per_bucket", 8),
                         hash_config=HashConfig(precision=cfg.get("hash_bits", 64)))


def exact_config():
    from datatrove.pipeline.dedup.exact_dedup import ExactDedupConfig

    return ExactDedupConfig(content_getter=exact_content)
