"""JSONL preference records → (prompt, chosen, rejected) messages, with one drop reason per bad record.

Accepted form (one JSON object per line; the common one of TRL, open-instruct and UltraFeedback)::

    {"prompt": "…" | [messages…], "chosen": "…" | [messages…], "rejected": "…" | [messages…],
     "system": "…" (optional, with a string prompt)}

* ``prompt``: a string (one user turn) or messages reading ``[system] user (assistant user)*``;
* ``chosen`` / ``rejected``: a string (one assistant turn) or messages. When the messages repeat
  the prompt first (UltraFeedback-binarized and HH-RLHF give whole conversations), that prefix is
  removed; what remains must read ``assistant (user assistant)*``.

Drop reasons (:data:`DROP_REASONS`), checked in this order: ``malformed`` (not JSON, not an
object, a missing or mistyped field, an unknown role, a wrong role order), ``empty`` (a blank
message on any side), ``identical`` (chosen equals rejected once stripped, as the template trims),
``too_long`` (decided after rendering, see ``build.py``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass

ROLES = ("system", "user", "assistant")
DROP_REASONS = ("malformed", "empty", "identical", "too_long")


class PairError(ValueError):
    """A record that cannot become a preference pair; ``reason`` is one of :data:`DROP_REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Pair:
    """One preference pair as chat messages (``[{"role", "content"}, …]``)."""

    prompt: list[dict]    # ends with a user turn
    chosen: list[dict]    # starts and ends with an assistant turn
    rejected: list[dict]


def _messages(value, field: str, default_role: str) -> list[dict]:
    if isinstance(value, str):
        return [{"role": default_role, "content": value}]
    if not isinstance(value, list) or not value:
        raise PairError("malformed", f"{field!r} must be a string or a non-empty list of messages")
    out = []
    for n, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise PairError("malformed", f"{field}[{n}] needs string \"role\" and \"content\"")
        if m["role"] not in ROLES:
            raise PairError("malformed", f"{field}[{n}] has role {m['role']!r} (expected one of {', '.join(ROLES)})")
        out.append({"role": m["role"], "content": m["content"]})
    return out


def _check_order(roles: list[str], expected_first: str, field: str, pattern: str) -> None:
    other = "assistant" if expected_first == "user" else "user"
    expected = [expected_first if i % 2 == 0 else other for i in range(len(roles))]
    if not roles or roles != expected or roles[-1] != expected_first:
        raise PairError("malformed", f"{field} reads {' → '.join(roles)}; expected {pattern}")


def _response(value, field: str, prompt: list[dict]) -> list[dict]:
    messages = _messages(value, field, "assistant")
    if len(messages) > len(prompt) and messages[:len(prompt)] == prompt:
        messages = messages[len(prompt):]  # whole conversation given: keep what follows the prompt
    _check_order([m["role"] for m in messages], "assistant", field, "assistant (user assistant)…")
    return messages


def to_pair(record) -> Pair:
    """Map a decoded JSON record to a :class:`Pair`. Raises :class:`PairError` (reason ``malformed``/``empty``/``identical``)."""
    if not isinstance(record, dict):
        raise PairError("malformed", f"expected a JSON object, got {type(record).__name__}")
    missing = [k for k in ("prompt", "chosen", "rejected") if k not in record]
    if missing:
        raise PairError("malformed", f"missing {', '.join(missing)} (got keys {sorted(record)[:8]})")
    system = record.get("system")
    if system is not None and not isinstance(system, str):
        raise PairError("malformed", "\"system\" must be a string")
    prompt = _messages(record["prompt"], "prompt", "user")
    if isinstance(record["prompt"], str) and system and system.strip():
        prompt = [{"role": "system", "content": system}, *prompt]
    roles = [m["role"] for m in prompt]
    _check_order(roles[1:] if roles[0] == "system" else roles, "user", "prompt", "[system] user (assistant user)…")
    chosen = _response(record["chosen"], "chosen", prompt)
    rejected = _response(record["rejected"], "rejected", prompt)
    for field, messages in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
        blank = [n for n, m in enumerate(messages) if not m["content"].strip()]
        if blank:
            raise PairError("empty", f"{field} message {blank[0]} ({messages[blank[0]]['role']}) is empty")
    if [(m["role"], m["content"].strip()) for m in chosen] == [(m["role"], m["content"].strip()) for m in rejected]:
        raise PairError("identical", "chosen and rejected are the same response")
    return Pair(prompt, chosen, rejected)


def parse_line(raw: str | bytes) -> Pair:
    """One JSONL line → :class:`Pair`. Raises :class:`PairError`."""
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise PairError("malformed", f"not JSON ({str(err)[:100]})") from None
    return to_pair(record)


__all__ = ["DROP_REASONS", "Pair", "PairError", "parse_line", "to_pair"]
