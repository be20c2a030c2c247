"""Find PII spans, resolve overlaps, replace each span by its Mi:dm placeholder token."""
from __future__ import annotations

from collections import Counter

from data_prep.pii.names import NameAddressFinder
from data_prep.pii.patterns import Span, find_structured
from data_prep.pii.types import PII_TOKENS

# earlier = wins an overlap of equal standing (more specific formats first)
PRIORITY = ["EMAIL", "RRN", "FRN", "CORP_REG", "CARD", "DRIVER_LICENSE", "BUSINESS_REG", "PHONE", "HEALTH_INSURANCE",
            "PASSPORT", "ACCOUNT", "IP", "MAC", "CUSTOMS", "SNS", "VEHICLE", "ADDRESS", "PERSON"]
_RANK = {t: i for i, t in enumerate(PRIORITY)}


def resolve(spans: list[Span]) -> list[Span]:
    """Keep non-overlapping spans: higher score, then type priority, then longer span."""
    chosen: list[Span] = []
    for s in sorted(spans, key=lambda s: (-s.score, _RANK.get(s.type, 99), -s.length, s.start)):
        if all(s.end <= c.start or s.start >= c.end for c in chosen):
            chosen.append(s)
    return sorted(chosen, key=lambda s: s.start)


class PiiDetector:
    def __init__(self, types: list[str] | str = "all", names: bool = True, addresses: bool = True):
        self.types = None if types == "all" else set(types)
        self.names = names and (self.types is None or "PERSON" in self.types)
        self.addresses = addresses and (self.types is None or "ADDRESS" in self.types)
        self.finder = NameAddressFinder()

    def detect(self, text: str) -> list[Span]:
        spans = list(find_structured(text, self.types))
        spans += self.finder.find(text, self.names, self.addresses)
        return resolve(spans)


def mask_text(text: str, spans: list[Span]) -> tuple[str, Counter]:
    out, pos, counts = [], 0, Counter()
    for s in spans:
        out.append(text[pos:s.start])
        out.append(PII_TOKENS[s.type])
        counts[s.type] += 1
        pos = s.end
    out.append(text[pos:])
    return "".join(out), counts
