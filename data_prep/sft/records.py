"""JSONL chat records → messages, and what is wrong with a conversation (one drop reason each).

Accepted forms (one JSON object per line):

* ``{"messages": [{"role": "system"|"user"|"assistant", "content": str}, …]}`` (OpenAI / TRL /
  Megatron-LM's ``SFTLowLevelDataset``);
* ``{"instruction": str, "input": str, "output": str}`` (Alpaca): user = instruction, plus
  ``"\\n\\n" + input`` when the input is not empty; assistant = output;
* ``{"prompt": str, "response": str}``.

The last two take an optional ``"system": str``. A conversation is kept when it reads
``[system] user assistant (user assistant)*`` with no empty message; otherwise it is dropped with
exactly one reason of :data:`DROP_REASONS` (checked in that order).
"""
from __future__ import annotations

import json

from data_prep.sft.chat import ROLES

# in the order they are checked; "too_long" is decided after rendering (see build.py)
DROP_REASONS = ("malformed_json", "unknown_format", "empty", "unknown_role", "no_assistant_turn",
                "bad_role_order", "too_long")


class RecordError(ValueError):
    """A record that cannot become a training conversation; ``reason`` is one of :data:`DROP_REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def parse_line(raw: str | bytes) -> list[dict]:
    """One JSONL line → checked messages. Raises :class:`RecordError`."""
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise RecordError("malformed_json", str(err)[:120]) from None
    messages = to_messages(record)
    check_conversation(messages)
    return messages


def _text(record: dict, key: str) -> str:
    value = record.get(key, "")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError("unknown_format", f"field {key!r} must be a string, got {type(value).__name__}")
    return value


def to_messages(record) -> list[dict]:
    """Map any accepted form to ``[{"role", "content"}, …]`` (contents unchanged). Raises :class:`RecordError`."""
    if not isinstance(record, dict):
        raise RecordError("unknown_format", f"expected a JSON object, got {type(record).__name__}")
    system = _text(record, "system")
    head = [{"role": "system", "content": system}] if system.strip() else []
    if "messages" in record:
        msgs = record["messages"]
        if not isinstance(msgs, list) or not all(isinstance(m, dict) for m in msgs):
            raise RecordError("unknown_format", "\"messages\" must be a list of {\"role\", \"content\"} objects")
        out = []
        for n, m in enumerate(msgs):
            if not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
                raise RecordError("unknown_format", f"message {n} needs string \"role\" and \"content\"")
            out.append({"role": m["role"], "content": m["content"]})
        return head + out
    if "instruction" in record and "output" in record:
        user = _text(record, "instruction")
        extra = _text(record, "input")
        if extra.strip():
            user = f"{user}\n\n{extra}"
        return head + [{"role": "user", "content": user}, {"role": "assistant", "content": _text(record, "output")}]
    if "prompt" in record and "response" in record:
        return head + [{"role": "user", "content": _text(record, "prompt")},
                       {"role": "assistant", "content": _text(record, "response")}]
    raise RecordError("unknown_format", "expected \"messages\", \"instruction\"+\"output\" or \"prompt\"+\"response\"; "
                                        f"got keys {sorted(record)[:8]}")


def check_conversation(messages: list[dict]) -> None:
    """Raise :class:`RecordError` unless ``messages`` reads ``[system] user assistant (user assistant)*``."""
    if not messages:
        raise RecordError("empty", "no messages")
    roles = [m["role"] for m in messages]
    unknown = sorted({r for r in roles if r not in ROLES})
    if unknown:
        raise RecordError("unknown_role", f"roles {unknown} (expected {', '.join(ROLES)})")
    if "assistant" not in roles:
        raise RecordError("no_assistant_turn", "no assistant message to learn from")
    blank = [n for n, m in enumerate(messages) if not m["content"].strip()]
    if blank:
        raise RecordError("empty", f"message {blank[0]} ({roles[blank[0]]}) is empty")
    body = roles[1:] if roles[0] == "system" else roles
    expected = ["user", "assistant"] * (len(body) // 2)
    if body != expected or not body:
        raise RecordError("bad_role_order", f"got {' → '.join(roles)}; expected [system] user assistant "
                                            "(user assistant)…")


__all__ = ["DROP_REASONS", "RecordError", "check_conversation", "parse_line", "to_messages"]
