"""Structured identifiers: regular expressions + check digits + the words around them.

Boundaries are ASCII-alphanumeric, not ``\\b``: Korean particles attach directly to numbers
(``010-1234-5678로``), and Hangul counts as a word character. A number's type often depends on
its label (``계좌``, ``여권번호``, ``건강보험증``), so several detectors look a few characters
back for their keywords.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Iterator

from data_prep.pii import checksums as ck

B = r"(?<![0-9A-Za-z])"
E = r"(?![0-9A-Za-z])"
D = r"(?<![0-9A-Za-z-])"   # number start: no digit/letter/hyphen glued before
DE = r"(?![0-9A-Za-z]|-\d)"


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    type: str
    score: float = 1.0

    @property
    def length(self) -> int:
        return self.end - self.start


def before(text: str, start: int, width: int = 25) -> str:
    return text[max(0, start - width):start]


# the syllables of the use code on a Korean number plate (12가 3456)
_VEHICLE_USES = "가나다라마거너더러머버서어저고노도로모보소오조구누두루무부수우주아바사자배하허호"
_BANKS = (r"계좌|은행|뱅크|농협|신협|우체국|새마을|수협|입금|송금|이체|예금주|KB|NH|IBK|SC제일|씨티|"
          r"국민|신한|우리|하나|기업|카카오|토스|케이")
RX: dict[str, re.Pattern] = {
    "EMAIL": re.compile(B + r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}" + E),
    "PHONE": re.compile(
        D + r"\(?(?:\+82[-. ]?(?:\(0\))?|0)(?:1[016789]|2|[3-6][1-5]|70|50[2-8])\)?[-. )]{0,2}\d{3,4}[-. ]\d{4}" + DE
        + r"|" + D + r"01[016789]\d{7,8}" + DE
        + r"|" + D + r"1[5-8]\d{2}-\d{4}" + DE
        + r"|" + D + r"1[0-9]{3}" + DE),
    "RRN": re.compile(D + r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\s?[-–]\s?[0-9*]\d{6}" + DE
                      + r"|" + D + r"\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])[1-8]\d{6}" + DE),
    "CORP_REG": re.compile(D + r"\d{6}-\d{7}" + DE),
    "BUSINESS_REG": re.compile(D + r"\d{3}-\d{2}-\d{5}" + DE + r"|" + D + r"\d{10}" + DE),
    "CARD": re.compile(D + r"(?:\d{4}[- ]){3}\d{4}" + DE + r"|" + D + r"\d{4}[- ]\d{6}[- ]\d{5}" + DE
                       + r"|" + D + r"\d{15,16}" + DE),
    "ACCOUNT": re.compile(D + r"\d{2,6}(?:-\d{2,8}){1,3}" + DE + r"|" + D + r"\d{10,14}" + DE),
    "IP": re.compile(B + r"(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
                     + r"(?![0-9A-Za-z]|\.\d)"),
    "MAC": re.compile(B + r"(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}" + E),
    "PASSPORT": re.compile(B + r"(?:[A-Z]{1,2}\d{7,8}|[MSRODG]\d{3}[A-Z]\d{4}|\d{9})" + E),
    "DRIVER_LICENSE": re.compile(D + r"(?:1[1-9]|2[0-8])-\d{2}-\d{6}-\d{2}" + DE
                                 + r"|(?:서울|부산|경기|강원|충북|충남|전북|전남|경북|경남|제주|대구|인천|광주|대전|울산)"
                                 + r"\s?\d{2}-\d{6}-\d{2}" + DE),
    "VEHICLE": re.compile(r"(?<![0-9A-Za-z가-힣])(?:(?:서울|부산|대구|인천|광주|대전|울산|세종|경기|강원|충북|충남|전북|전남|경북|경남|제주)\s?)?"
                          r"\d{2,3}\s?[" + _VEHICLE_USES + r"]\s?\d{4}"
                          r"(?![0-9A-Za-z]|\s?[억만천원명개])"),
    "HEALTH_INSURANCE": re.compile(D + r"\d-\d{10,11}" + DE + r"|" + D + r"\d{10,11}" + DE),
    "CUSTOMS": re.compile(B + r"P\d{12}" + E),
    "SNS": re.compile(r"(?<![A-Za-z0-9._%+-])@[A-Za-z0-9_.]{3,30}" + E),
}

# Pre-checks, per kind: patterns of which every match of ``RX[kind]`` contains one (PHONE: every
# match that becomes a span; a bare ``1xxx`` does only after a phone label, so the label is part of
# its pattern and years such as 1990 do not start the scan). A text with none cannot hold that kind,
# so its scan (a lookbehind tried at every character: ~60 ns/char) is skipped; each pre-check starts
# with a character class or literals, which sre turns into a C-level skip to the candidates, a few
# ns/char. The spans found are the same.
_HOTLINE_LABEL = r"(?:전화|문의|신고|상담|센터|콜|번호|☎|Tel|TEL|tel)\s*[:：]?\s*\(?"
NEEDS: dict[str, tuple[re.Pattern, ...]] = {kind: tuple(re.compile(p) for p in patterns) for kind, patterns in {
    "EMAIL": ["@"],
    "PHONE": [r"\d(?:\d\d[-. ]\d{4}|\d{9})", _HOTLINE_LABEL + r"1\d{3}"],  # \d{3,4}[-. ]\d{4}, 01x\d{7,8}; 1xxx
    "RRN": [r"\d{6}"],                                    # YYMMDD
    "CORP_REG": [r"\d{6}-\d"],
    "BUSINESS_REG": [r"\d(?:\d\d-\d\d-\d|\d{9})"],           # ddd-dd-d… or \d{10}
    "CARD": [r"\d(?:\d{3}[- ]\d|\d{14})"],                    # dddd[- ]d… or \d{15,16}
    "ACCOUNT": [r"\d(?:\d-\d\d|\d{9})"],                     # dd-dd… or \d{10,14}
    "IP": [r"\d\.\d{1,3}\.\d{1,3}\.\d"],
    "MAC": [r"[:-](?<=[0-9A-Fa-f]{2}[:-])[0-9A-Fa-f]{2}[:-]"],  # hh:hh: found from its rarer ':'/'-'
    "PASSPORT": [r"\d(?:\d{6}|\d\d[A-Z]\d{4})"],              # \d{7,9} or ddd[A-Z]dddd
    "DRIVER_LICENSE": [r"\d\d-\d{6}-\d"],
    "VEHICLE": [r"\d\s?[" + _VEHICLE_USES + r"]\s?\d{4}"],
    "HEALTH_INSURANCE": [r"\d{10}"],
    "CUSTOMS": [r"P\d{12}"],
    "SNS": ["@"],
}.items()}
# The longest run of digits (``\\d``) every match of ``RX[kind]`` holds, from its alternatives' digit
# groups (e.g. CARD: dddd-…, dddd dddddd ddddd, \\d{15,16} -> 4); a text without such a run skips the
# kind's pre-check: a statute's years (4 digits) leave 6 of 15 to check.
MIN_DIGIT_RUN: dict[str, int] = {
    "EMAIL": 0, "PHONE": 4, "RRN": 6, "CORP_REG": 7, "BUSINESS_REG": 5, "CARD": 4, "ACCOUNT": 2, "IP": 1, "MAC": 0,
    "PASSPORT": 4, "DRIVER_LICENSE": 6, "VEHICLE": 4, "HEALTH_INSURANCE": 10, "CUSTOMS": 12, "SNS": 0,
}
_DIGIT_RUNS = {n: re.compile(rf"\d{{{n}}}") for n in set(MIN_DIGIT_RUN.values()) if n}  # longest run >= n


def _after_first_digit(pattern: str) -> str:
    """``pattern`` (which starts with ``\\d``) less its first digit: ``\\d{6}`` -> ``\\d{5}``,
    ``\\d\\.x`` -> ``\\.x``."""
    m = re.match(r"\\d\{(\d+)\}", pattern)
    return rf"\d{{{int(m.group(1)) - 1}}}" + pattern[m.end():] if m else pattern[2:]


# The pre-checks that start with a digit, as one pattern ``\d(?:rest A|rest B|…)``: a text none of them
# matches (most texts, even with years and article numbers in them) skips them all in one scan instead of
# one scan per kind; a text that holds one is checked kind by kind as before. The leading ``\d`` lets sre
# skip to the digits in C (the bare alternation ``A|B|…`` is tried at every character: 5x slower).
_DIGIT_NEEDS = re.compile(r"\d(?:" + "|".join(dict.fromkeys(_after_first_digit(p.pattern) for patterns in NEEDS.values()
                                                             for p in patterns if p.pattern.startswith(r"\d"))) + ")")
_OTHER_NEEDS = {kind: tuple(p for p in patterns if not p.pattern.startswith(r"\d")) for kind, patterns in NEEDS.items()}

CONTEXT = {
    "ACCOUNT": re.compile(_BANKS),
    "CARD": re.compile(r"카드|card|Card|CARD|visa|Visa|VISA|Master|결제"),
    "PASSPORT": re.compile(r"여권|passport|Passport|PASSPORT"),
    "HEALTH_INSURANCE": re.compile(r"건강보험|건보|보험증|의료보험"),
    "BUSINESS_REG": re.compile(r"사업자"),
    "CORP_REG": re.compile(r"법인"),
    "SNS": re.compile(r"인스타|instagram|Instagram|트위터|twitter|Twitter|X\(|페이스북|facebook|텔레그램|telegram|"
                      r"틱톡|tiktok|유튜브|youtube|카톡|카카오톡|계정|아이디|ID"),
    "RRN": re.compile(r"주민|등록번호|생년월일"),
    "CUSTOMS": re.compile(r"통관"),
}


def _rrn(text: str, m: re.Match) -> Span | None:
    s = m.group(0)
    digits_only = "-" not in s and "–" not in s
    if "*" in s:
        return Span(m.start(), m.end(), "RRN", 0.9)
    if not ck.rrn_date_ok(s):
        return None
    gender = [c for c in s if c.isdigit()][6]
    kind = "FRN" if gender in "5678" else "RRN"
    if CONTEXT["CORP_REG"].search(before(text, m.start(), 12)) or not any(c in "123456789" for c in s[:6]):
        return None
    if digits_only and not (ck.rrn_checksum_ok(s) or CONTEXT["RRN"].search(before(text, m.start()))):
        return None
    if gender in "90":
        return None
    return Span(m.start(), m.end(), kind, 1.0 if ck.rrn_checksum_ok(s) else 0.8)


def _contextual(kind: str, need_context: Callable[[str], bool] | None = None, width: int = 25,
                validator: Callable[[str], bool] | None = None):
    def detect(text: str, m: re.Match) -> Span | None:
        s = m.group(0)
        valid = validator(s) if validator else False
        needs = need_context(s) if need_context else True
        if needs and not valid and not CONTEXT[kind].search(before(text, m.start(), width)):
            return None
        return Span(m.start(), m.end(), kind, 1.0 if valid else 0.8)
    return detect


def _card(text: str, m: re.Match) -> Span | None:
    s = m.group(0)
    if ck.luhn_ok(s) and s[0] in "3456":
        return Span(m.start(), m.end(), "CARD", 1.0)
    grouped = not s.isdigit()
    if grouped and CONTEXT["CARD"].search(before(text, m.start(), 30)):
        return Span(m.start(), m.end(), "CARD", 0.8)
    return None


def _account(text: str, m: re.Match) -> Span | None:
    s = m.group(0)
    n = sum(c.isdigit() for c in s)
    if not 10 <= n <= 16 or s.startswith("0") and "-" in s and s.split("-")[0] in ("02", "010", "011", "031", "070"):
        return None
    if CONTEXT["ACCOUNT"].search(before(text, m.start(), 30)) or CONTEXT["ACCOUNT"].match(text[m.end():m.end() + 6].strip(" ()")):
        return Span(m.start(), m.end(), "ACCOUNT", 0.8)
    return None


def _ip(text: str, m: re.Match) -> Span | None:
    s = m.group(0)
    if s.startswith("0.") or before(text, m.start(), 12).rstrip().lower().endswith(("ver", "version", "v", "버전")):
        return None
    return Span(m.start(), m.end(), "IP")


def _passport(text: str, m: re.Match) -> Span | None:
    s = m.group(0)
    korean_format = bool(re.fullmatch(r"[MSROD]\d{8}|[MSRODG]\d{3}[A-Z]\d{4}", s))
    if CONTEXT["PASSPORT"].search(before(text, m.start(), 30)):
        return Span(m.start(), m.end(), "PASSPORT", 1.0)
    return Span(m.start(), m.end(), "PASSPORT", 0.7) if korean_format else None


def _always(kind: str, score: float = 1.0):
    return lambda text, m: Span(m.start(), m.end(), kind, score)


_HOTLINE_CTX = re.compile(_HOTLINE_LABEL + "$")


def _phone(text: str, m: re.Match) -> Span | None:
    s = m.group(0)
    if len(s) == 4:  # short hotline numbers (1366, 1330): only right after a phone label
        return Span(m.start(), m.end(), "PHONE", 0.7) if _HOTLINE_CTX.search(before(text, m.start(), 12)) else None
    if s.rstrip().endswith(")"):
        return None
    if s.startswith("(") and ")" not in s:  # "(02-123-4567)": the parenthesis is not part of it
        return Span(m.start() + 1, m.end(), "PHONE")
    return Span(m.start(), m.end(), "PHONE")


DETECTORS: list[tuple[str, Callable[[str, re.Match], Span | None]]] = [
    ("EMAIL", _always("EMAIL")),
    ("RRN", _rrn),
    ("CORP_REG", _contextual("CORP_REG", width=15)),
    ("BUSINESS_REG", _contextual("BUSINESS_REG", need_context=lambda s: "-" not in s)),
    ("CARD", _card),
    ("DRIVER_LICENSE", _always("DRIVER_LICENSE")),
    ("PHONE", _phone),
    ("HEALTH_INSURANCE", _contextual("HEALTH_INSURANCE", width=20)),
    ("PASSPORT", _passport),
    ("ACCOUNT", _account),
    ("IP", _ip),
    ("MAC", _always("MAC")),
    ("VEHICLE", _always("VEHICLE", 0.9)),
    ("CUSTOMS", _contextual("CUSTOMS", need_context=lambda s: False)),
    ("SNS", _contextual("SNS", width=20)),
]


# the detectors whose pre-checks include one that does not start with a digit (EMAIL, PHONE, MAC, SNS)
_OTHER_DETECTORS = [(kind, detect) for kind, detect in DETECTORS if _OTHER_NEEDS[kind]]


def find_structured(text: str, types: set[str] | None = None) -> Iterator[Span]:
    needs, detectors = (NEEDS, DETECTORS) if _DIGIT_NEEDS.search(text) else (_OTHER_NEEDS, _OTHER_DETECTORS)
    for kind, detect in detectors:
        if types is not None and kind not in types and not (kind == "RRN" and "FRN" in types):
            continue
        run = MIN_DIGIT_RUN[kind]
        if run and not _DIGIT_RUNS[run].search(text) or not any(p.search(text) for p in needs[kind]):
            continue  # the text lacks what every match holds: none to find
        for m in RX[kind].finditer(text):
            span = detect(text, m)
            if span is not None and (types is None or span.type in types):
                yield span
