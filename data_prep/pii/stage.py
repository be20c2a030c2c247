"""Stage 7 as a pipeline step: mask PII in place, count replacements per type (never drops)."""
from __future__ import annotations

from datatrove.data import Document

from data_prep.filters.base import MidmStage
from data_prep.pii.detector import PiiDetector, mask_text


class PiiStage(MidmStage):
    stage = "pii"

    def setup(self) -> None:
        cfg = self.config
        self.detector = PiiDetector(cfg.get("types", "all"), cfg.get("names", True), cfg.get("addresses", True))

    def process(self, doc: Document) -> str | None:
        spans = self.detector.detect(doc.text)
        if spans:
            doc.text, counts = mask_text(doc.text, spans)
            for kind, n in counts.items():
                self.counts[f"masked:{kind}"] += n
            self.counts["docs_with_pii"] += 1
            doc.metadata.setdefault("_midm", {})["pii"] = dict(counts)
        return None
