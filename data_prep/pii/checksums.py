"""Check digits of Korean identifiers and card numbers.

A valid check digit turns an ambiguous digit run into a confident hit; an invalid one does
not by itself clear a number: RRNs issued since October 2020 carry a random last digit, and
many documents quote numbers with typos, so for formatted numbers the format plus context
decides and the checksum only adds confidence (see ``patterns.py``).
"""
from __future__ import annotations

import datetime as _dt


def digits(s: str) -> list[int]:
    return [int(c) for c in s if c.isdigit()]


def rrn_checksum_ok(s: str) -> bool:
    d = digits(s)
    if len(d) != 13:
        return False
    weights = [2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5]
    return (11 - sum(a * b for a, b in zip(d, weights)) % 11) % 10 == d[12]


def rrn_date_ok(s: str) -> bool:
    """YYMMDD plus the 7th digit's century (1/2/5/6: 1900s, 3/4/7/8: 2000s, 9/0: 1800s)."""
    d = "".join(c for c in s if c.isdigit())
    if len(d) < 7:
        return False
    century = {"1": 1900, "2": 1900, "5": 1900, "6": 1900, "3": 2000, "4": 2000, "7": 2000, "8": 2000,
               "9": 1800, "0": 1800}[d[6]]
    try:
        _dt.date(century + int(d[:2]), int(d[2:4]), int(d[4:6]))
    except ValueError:
        return False
    return True


def luhn_ok(s: str) -> bool:
    d = digits(s)[::-1]
    if not 12 <= len(d) <= 19:
        return False
    total = 0
    for i, x in enumerate(d):
        if i % 2:
            x *= 2
            if x > 9:
                x -= 9
        total += x
    return total % 10 == 0


def business_reg_ok(s: str) -> bool:
    """사업자등록번호 (10 digits) check digit."""
    d = digits(s)
    if len(d) != 10:
        return False
    weights = [1, 3, 7, 1, 3, 7, 1, 3, 5]
    total = sum(a * b for a, b in zip(d, weights)) + (d[8] * 5) // 10
    return (10 - total % 10) % 10 == d[9]


def corp_reg_ok(s: str) -> bool:
    """법인등록번호 (13 digits) check digit: weights 1,2 alternating."""
    d = digits(s)
    if len(d) != 13:
        return False
    total = sum(x * (1 if i % 2 == 0 else 2) for i, x in enumerate(d[:12]))
    return (10 - total % 10) % 10 == d[12]
