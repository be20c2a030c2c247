"""Stage 4 — heuristic quality rules (Gopher / C4 / FineWeb-2 family) with per-profile thresholds.

Thresholds are not one-size-fits-all: DESIGN.md measured FineWeb-2's Korean settings dropping
85 % of short movie reviews through the top-n-gram rules. So rules are grouped in *profiles*
chosen per document: ``default`` ← the language's profile (``ko``/``en``) ← ``short``
(documents under ``short_doc_chars``) ← ``short_<lang>`` (e.g. ``short_ko``: Korean words are
eojeols, so word-relative limits differ) ← the profile named for the document's source
(``profiles_by_source`` on the metadata field ``source_field``). Each rule that fires is a
drop reason of its own, so the stats say exactly which rule removed what.
"""
from __future__ import annotations

import copy
from typing import Any

from datatrove.data import Document

from data_prep.filters.base import MidmStage
from data_prep.filters.langid import hangul_ratio
from data_prep.filters.text_stats import DocStats, Segmenter, compute_stats, ko_function_words


def _merge(base: dict, over: dict | None) -> dict:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def check_rules(s: DocStats, r: dict[str, Any]) -> str | None:
    """First rule violated, as a reason string (``None`` when the document passes)."""
    def over(key: str, value: float) -> bool:
        return r.get(key) is not None and value > r[key]

    def under(key: str, value: float) -> bool:
        return r.get(key) is not None and value < r[key]

    if under("min_chars", s.n_chars):
        return "too_short_chars"
    if over("max_chars", s.n_chars):
        return "too_long_chars"
    if under("min_words", s.n_words):
        return "too_few_words"
    if over("max_words", s.n_words):
        return "too_many_words"
    if r.get("mean_word_len") and not (r["mean_word_len"][0] <= s.mean_word_len <= r["mean_word_len"][1]):
        return "mean_word_len"
    if under("min_alpha_word_frac", s.alpha_word_frac):
        return "non_alpha_words"
    if over("max_symbol_word_ratio", s.symbol_word_ratio):
        return "symbol_ratio"
    if under("min_stopwords", s.stopwords_found):
        return "no_stopwords"
    if over("max_bullet_line_frac", s.bullet_line_frac):
        return "bullet_lines"
    if over("max_ellipsis_line_frac", s.ellipsis_line_frac):
        return "ellipsis_lines"
    if s.n_lines >= r.get("line_rules_min_lines", 1):
        if under("min_terminal_line_frac", s.terminal_line_frac):
            return "line_end_punctuation"
        if over("max_short_line_frac", s.short_line_frac):
            return "short_lines"
    if over("max_dup_line_frac", s.dup_line_frac):
        return "dup_lines"
    if over("max_dup_para_frac", s.dup_para_frac):
        return "dup_paragraphs"
    if over("max_dup_line_char_frac", s.dup_line_char_frac):
        return "dup_line_chars"
    if over("max_dup_para_char_frac", s.dup_para_char_frac):
        return "dup_paragraph_chars"
    if over("max_newline_word_ratio", s.newline_word_ratio):
        return "newline_ratio"
    for n, limit in (r.get("max_top_ngram_char_frac") or {}).items():
        if limit is not None and s.top_ngram_char_frac.get(int(n), 0.0) > limit:
            return f"top_{n}gram"
    for n, limit in (r.get("max_dup_ngram_char_frac") or {}).items():
        if limit is not None and s.dup_ngram_char_frac.get(int(n), 0.0) > limit:
            return f"dup_{n}gram"
    return None


class HeuristicsStage(MidmStage):
    stage = "heuristics"

    def setup(self) -> None:
        cfg = self.config
        self.segmenter = Segmenter(cfg.get("kiwi_max_chars", 4000))
        self.stopwords = {lang: frozenset(words) for lang, words in cfg.get("stopwords", {}).items()}
        self._cache: dict[tuple, dict] = {}

    def rules_for(self, lang: str, short: bool, source: str | None) -> dict:
        key = (lang, short, source)
        if key not in self._cache:
            profiles = self.config.get("profiles", {})
            rules = _merge(profiles.get("default", {}), profiles.get(lang))
            if short:
                rules = _merge(_merge(rules, profiles.get("short")), profiles.get(f"short_{lang}"))
            src_profile = self.config.get("profiles_by_source", {}).get(source) if source else None
            if src_profile:
                rules = _merge(rules, profiles.get(src_profile))
            self._cache[key] = rules
        return self._cache[key]

    def process(self, doc: Document) -> str | None:
        meta = doc.metadata.setdefault("_midm", {})
        lang = meta.get("lang") or ("ko" if hangul_ratio(doc.text[:3000])[0] >= 0.3 else "en")  # langid off
        source_field = self.config.get("source_field", "source")
        source = doc.metadata.get(source_field)
        short = len(doc.text) < self.config.get("short_doc_chars", 500)
        rules = self.rules_for(lang, short, source if isinstance(source, str) else None)
        stopwords = self.stopwords.get(lang, frozenset())
        found = len(stopwords & ko_function_words(doc.text)) if lang == "ko" else None
        stats = compute_stats(doc.text, self.segmenter.words(doc.text, lang), stopwords,
                              rules.get("short_line_chars", 30), stopwords_found=found, clean_words=lang == "ko",
                              **self.ngram_sizes(rules))
        self.counts["words"] += stats.n_words
        reason = check_rules(stats, rules)
        if reason == "no_stopwords" and lang == "ko":
            # the surface count is a lower bound: Kiwi decides (a few percent of documents)
            self.counts["kiwi_docs"] += 1
            stats.stopwords_found = max(found, self.segmenter.kiwi_stopwords(doc.text, stopwords))
            reason = check_rules(stats, rules)
        return reason

    @staticmethod
    def ngram_sizes(rules: dict) -> dict[str, tuple[int, ...]]:
        """The n-gram sizes ``rules`` set a limit for (computing the others only costs time)."""
        def sizes(key: str) -> tuple[int, ...]:
            return tuple(sorted(int(n) for n, v in (rules.get(key) or {}).items() if v is not None))

        return {"top_ns": sizes("max_top_ngram_char_frac"), "dup_ns": sizes("max_dup_ngram_char_frac")}
