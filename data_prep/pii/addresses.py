"""Postal addresses (stage 7): a pattern of Korean address parts, with Kiwi confirming a district.

Split out of :mod:`data_prep.pii.names`, which supplies Kiwi's tokens (its per-word memo).
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from data_prep.pii.patterns import Span

SIDO = (r"서울특별시|서울시|서울|부산광역시|부산시|부산|대구광역시|대구시|대구|인천광역시|인천시|인천|광주광역시|광주시|"
        r"대전광역시|대전시|대전|울산광역시|울산시|울산|세종특별자치시|세종시|세종|경기도|경기|강원특별자치도|강원도|강원|"
        r"충청북도|충북|충청남도|충남|전북특별자치도|전라북도|전북|전라남도|전남|경상북도|경북|경상남도|경남|"
        r"제주특별자치도|제주도|제주")
_ADDRESS = re.compile(
    r"(?<![가-힣])(?=[가-힣])(?:(?P<sido>" + SIDO + r")\s+)?"
    r"(?P<sgg>(?:[가-힣]{1,5}(?:시|군|구)\s+){0,2}[가-힣]{1,5}(?:시|군|구))?"
    r"(?P<rest>(?:\s+[가-힣0-9]{1,8}(?:읍|면))?(?:\s+[가-힣0-9]{1,8}(?:동|리|가))?"
    r"(?:\s+[가-힣0-9]{1,12}(?:로|길)(?:\s?\d+(?:번길|길))?)?"
    r"(?:\s+(?:산\s?)?\d{1,5}(?:-\d{1,5})?(?:번지)?(?![\d.]))?)"
    r"(?P<detail>(?:,?\s+(?:[가-힣A-Za-z0-9]{1,12}\s)?\d{1,4}동\s?\d{1,5}호|,?\s+\d{1,3}층(?:\s?\d{1,5}호)?"
    r"|,?\s+\d{1,5}호)?(?:\s?\([가-힣A-Za-z0-9 ,]{2,30}\))?)"
)



def _hint_pattern() -> re.Pattern:
    """Every address has a province/city name or a 시/군/구 word followed by more of the address.

    Written as branches that each start with one literal syllable (``시(?<=[가-힣].)\\s``, ``서(?:울특별시|…)``):
    sre then skips to those syllables with a character-set scan instead of trying the alternation
    at every position (0.66 → 0.07 CPU-s on the throughput corpus's PII input, the same hints).
    """
    by_first: dict[str, list[str]] = {}
    for name in SIDO.split("|"):
        by_first.setdefault(name[0], []).append(re.escape(name[1:]))
    branches = [f"{c}(?<=[가-힣].)\\s" for c in "시군구"]
    branches += [f"{c}(?:{'|'.join(rests)})" for c, rests in by_first.items()]
    return re.compile("|".join(branches))


_HINT = _hint_pattern()


def _matches(text: str) -> Iterator[re.Match]:
    """The non-empty matches ``_ADDRESS.finditer(text)`` gives, found by trying the pattern only at
    the start of the Hangul runs that hold a hint (a province name, a 시/군/구 word before a space).

    A non-empty match starts with a province or a district word, and both are hints, so nothing is
    missed; the long pattern is no longer tried at every Hangul run of the text (~3 CPU-s on the
    throughput corpus's statutes). Matches never overlap, as with ``finditer``.
    """
    pos = tried = -1
    for hint in _HINT.finditer(text):
        start = hint.start()
        while start > 0 and "가" <= text[start - 1] <= "힣":
            start -= 1
        if start < pos or start == tried:
            continue
        tried = start
        m = _ADDRESS.match(text, start)
        if m is not None and m.end() > start:
            pos = m.end()
            yield m


def find_addresses(text: str, tokens: Callable[[int, int], list]) -> Iterator[Span]:
    """ADDRESS spans: province/city → district → town/road → number (+ building/unit) sequences.

    ``tokens(start, end)`` gives Kiwi's tokens ``(start, length, tag, oov)`` around a span: without
    a province, the district must be a proper noun to Kiwi (so ``연구 활동`` is not ``…구 …동``).
    Score 1.0 with a town/road/number part, 0.8 for a province + district alone.
    """
    for m in _matches(text):
        sido, sgg, rest = m.group("sido"), m.group("sgg"), (m.group("rest") or "").strip()
        if not sgg and not (sido and rest):
            continue
        if not sido and not rest:
            continue  # a bare district name is not an address
        if not sido:
            s0 = m.start("sgg")
            if not any(t[0] == s0 and (t[2] == "NNP" or t[3]) for t in tokens(s0, m.end("sgg"))):
                continue  # without a province, Kiwi must see the district as a proper noun
        start = m.start("sido") if sido else m.start("sgg")
        end = m.end("detail") if rest and m.group("detail") else (m.end("rest") if rest else m.end("sgg"))
        yield Span(start, end, "ADDRESS", 1.0 if rest else 0.8)
