"""Values formatted for people (report text and tables), and one-sentence claims with their numbers.

No Python reprs reach the report: counts get thousands separators, dicts become "a 3 · b 1",
booleans become words, seconds become "4 min 05 s". Torch-free.
"""
from __future__ import annotations

import math


def count(n: int | float | None) -> str:
    """``4088`` → ``4,088``; None → ``–``."""
    if n is None:
        return "–"
    return f"{n:,.0f}" if float(n).is_integer() else f"{n:,.2f}"


def tokens(n: int | float | None) -> str:
    """``102400`` → ``102 k``; ``3.2e6`` → ``3.2 M`` (tokens)."""
    if n is None:
        return "–"
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"
    return f"{n:.0f}"


def loss(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.3f}"


def percent(part: float, whole: float, digits: int = 0) -> str:
    return "–" if not whole else f"{100 * part / whole:.{digits}f} %"


def counts(mapping: dict | None, empty: str = "none") -> str:
    """``{"too_short": 3, "lang": 1}`` → ``too short 3 · lang 1`` (largest first); nested dicts are summed."""
    if not mapping:
        return empty
    flat = {k: (sum(v.values()) if isinstance(v, dict) else v) for k, v in mapping.items()}
    items = sorted(flat.items(), key=lambda kv: -kv[1])
    return " · ".join(f"{str(k).replace('_', ' ')} {count(v)}" for k, v in items)


def seconds(value: float | None) -> str:
    """``245.3`` → ``4 min 05 s``; ``12.34`` → ``12.3 s``."""
    if value is None:
        return "–"
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(round(value), 60)
    return f"{minutes} min {secs:02d} s"


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, one line)."""
    return str(text).replace("|", "\\|").replace("\n", " ⏎ ").strip()


def lower_is_better(claim: str, ours: tuple[str, float | None], other: tuple[str, float | None], unit: str) -> str:
    """One sentence: did ``ours`` end lower than ``other``? ``claim`` names what was expected.

    ``unit`` names the measure, e.g. "validation loss". Example: "**Held** — DuS …: validation loss
    4.812 vs 4.903 for the parent trained on (−0.091)."
    """
    (name_a, a), (name_b, b) = ours, other
    if a is None or b is None:
        return f"**Not measured** — {claim}: no {unit} for {name_a if a is None else name_b}."
    verdict = "Held" if a < b else "Did not hold"
    return (f"**{verdict}** — {claim}: {unit} {loss(a)} for {name_a} vs {loss(b)} for {name_b} "
            f"({a - b:+.3f}).")
