"""PII types and the Mi:dm 2.0 placeholder each one becomes.

The strings are the tokenizer's special tokens exactly as published (``data/paper/
midm2_special_tokens.json``), including the release's irregular ``#@통관번호#``: a placeholder
that is not byte-identical to the special token would be split into many ordinary tokens.
Corporate registration numbers have no token of their own; they share the business
registration placeholder (both identify a legal entity's registration).
"""
from __future__ import annotations

PII_TOKENS: dict[str, str] = {
    "PERSON": "#@이름@#",
    "RRN": "#@주민번호@#",
    "PHONE": "#@전화번호@#",
    "EMAIL": "#@이메일@#",
    "ACCOUNT": "#@계좌번호@#",
    "ADDRESS": "#@주소@#",
    "CARD": "#@신용카드번호@#",
    "IP": "#@IP@#",
    "PASSPORT": "#@여권번호@#",
    "DRIVER_LICENSE": "#@자동차운전면허번호@#",
    "BUSINESS_REG": "#@사업자등록번호@#",
    "CORP_REG": "#@사업자등록번호@#",
    "VEHICLE": "#@자동차번호@#",
    "FRN": "#@외국인등록번호@#",
    "HEALTH_INSURANCE": "#@건보번호@#",
    "MAC": "#@MAC주소@#",
    "SNS": "#@SNS계정@#",
    "CUSTOMS": "#@통관번호#",
}

STRUCTURED = ["PHONE", "EMAIL", "RRN", "FRN", "ACCOUNT", "CARD", "IP", "PASSPORT", "DRIVER_LICENSE",
              "BUSINESS_REG", "CORP_REG", "VEHICLE", "HEALTH_INSURANCE", "MAC", "CUSTOMS", "SNS"]
