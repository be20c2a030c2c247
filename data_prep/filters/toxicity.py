"""Stage 6 — toxicity / adult / gambling / spam: lexicons + a fastText classifier.

Lexicons (profanity from badwords-ko, LDNOOBW, purism; gambling/spam terms) are matched
with an Aho-Corasick automaton over the lower-cased text. A single curse word does not make
a web page toxic, so lexicons drop a document only past a count of *distinct* hits or a hit
density; the classifier (trained by ``midm data train-classifier toxicity`` on the labelled
Korean sets) drops what reads as abusive as a whole, with its own threshold.
"""
from __future__ import annotations

from pathlib import Path

from datatrove.data import Document

from data_prep.classifiers.fasttext_model import FastTextScorer
from data_prep.filters.base import MidmStage


def load_terms(paths: list[str]) -> set[str]:
    terms: set[str] = set()
    for path in paths:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            line = line.strip().lower()
            if line and not line.startswith("#") and len(line) >= 2:
                terms.add(line)
    return terms


def build_automaton(terms: set[str]):
    import ahocorasick

    automaton = ahocorasick.Automaton()
    for term in terms:
        automaton.add_word(term, term)
    if terms:
        automaton.make_automaton()
    return automaton


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def distinct_hits(automaton, text: str) -> tuple[set[str], int]:
    """Distinct terms found and the total hit count.

    Latin-script terms must stand as whole words ("tit" must not fire inside "title", "ass"
    inside "class"); Korean terms match inside eojeols, where particles attach to them.
    """
    if not len(automaton):
        return set(), 0
    found, total = set(), 0
    for end, term in automaton.iter(text):
        if term.isascii():
            start = end - len(term) + 1
            if (start > 0 and _is_word_char(text[start - 1])) or (end + 1 < len(text) and _is_word_char(text[end + 1])):
                continue
        found.add(term)
        total += 1
    return found, total


class ToxicityStage(MidmStage):
    stage = "toxicity"

    def setup(self) -> None:
        cfg = self.config
        self.profanity = build_automaton(load_terms(cfg.get("lexicon_files", [])))
        self.spam = build_automaton(load_terms(cfg.get("spam_lexicon_files", [])))
        self.scorer = FastTextScorer(cfg["classifier"], cfg.get("classifier_max_chars", 2000)) \
            if cfg.get("classifier") else None
        if self.scorer:
            self.scorer.load()  # fail at start, with a clear message, not on document 1

    def process(self, doc: Document) -> str | None:
        cfg = self.config
        text = doc.text.lower()
        hits, total = distinct_hits(self.profanity, text)
        if len(hits) >= cfg.get("min_lexicon_hits", 3):
            return "profanity_lexicon"
        if total * 1000 / max(1, len(text)) > cfg.get("max_lexicon_hits_per_kchar", 8) and total >= 2:
            return "profanity_density"
        spam_hits, _ = distinct_hits(self.spam, text)
        if len(spam_hits) >= cfg.get("min_spam_hits", 2):
            return "spam_gambling_lexicon"
        if self.scorer is not None:
            p = self.scorer.prob(doc.text, "toxic")
            doc.metadata.setdefault("_midm", {})["toxicity"] = round(p, 4)
            if p >= cfg.get("classifier_threshold", 0.35) and (hits or not cfg.get("classifier_needs_lexicon_hit", False)):
                return "classifier"
        return None
