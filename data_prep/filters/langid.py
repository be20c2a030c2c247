"""Stage 3 — language identification keeping Korean and English, with a Hangul-ratio check.

The model is py3langid's (langid.py's 97-language naive Bayes, shipped inside the pip package:
no download at run time). Hangul ratio = Hangul syllables+jamo / all letters (:mod:`data_prep.hangul`,
the check the tokenizer and the demo use too); a document whose
letters are mostly Hangul is Korean without asking the model (short Korean comments are where
language-ID models are weakest), a document called Korean must still have a minimum Hangul
ratio (rejects Korean-tagged romanised/Chinese spam), and English must score above its
threshold. ``doc.metadata['_midm']['lang']`` records the decision for later stages.
"""
from __future__ import annotations

from datatrove.data import Document

from data_prep.filters.base import MidmStage
from data_prep.hangul import hangul_ratio


class LangIdStage(MidmStage):
    stage = "langid"

    def setup(self) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self.ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)

    def classify(self, text: str) -> tuple[str, float]:
        lang, prob = self.ident.classify(text[: self.config.get("sample_chars", 3000)])
        return lang, float(prob)

    def process(self, doc: Document) -> str | None:
        cfg = self.config
        ratio, letters = hangul_ratio(doc.text[: cfg.get("sample_chars", 3000)])
        if letters < cfg.get("min_letters", 3):
            return "too_few_letters"
        keep = set(cfg.get("keep", ["ko", "en"]))
        if ratio >= cfg.get("hangul_ratio_is_korean", 0.6) and "ko" in keep:
            lang, prob = "ko", 1.0
        else:
            lang, prob = self.classify(doc.text)
        self.counts[f"lang:{lang}"] += 1
        annotations = doc.metadata.setdefault("_midm", {})
        annotations["lang"] = lang
        annotations["lang_score"] = round(prob, 4)
        annotations["hangul_ratio"] = round(ratio, 4)
        if lang not in keep:
            return "other_language"
        if prob < cfg.get("min_score", {}).get(lang, 0.5):
            return f"low_{lang}_score"
        if lang == "ko" and ratio < cfg.get("min_hangul_ratio_ko", 0.3):
            return "low_hangul_ratio"
        if lang == "en" and ratio > cfg.get("max_hangul_ratio_en", 0.3):
            return "mixed_script"
        return None
