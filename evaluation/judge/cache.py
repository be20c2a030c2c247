"""Persistent judgement cache: one JSON line per answered judge request.

The key is the SHA-256 of the canonical request (judge model, messages, temperature, max_tokens, n),
so the same answer judged by the same judge with the same prompt is never asked twice — across
re-runs, benchmarks and models. The file is append-only (a judgement is written and fsynced the
moment it arrives, so a crash loses at most the request in flight); a torn last line from a crash is
skipped on load. Entries record the judge model and the raw judgement text (scores are re-parsed
from it, so a parser fix needs no new requests).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any


class JudgeCache:
    def __init__(self, path: Path | None):
        self.path = path
        self._entries: dict[str, dict[str, Any]] = {}
        if path is not None and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:  # torn last line of a crashed run
                    continue
                if isinstance(entry, dict) and "key" in entry:
                    self._entries[entry["key"]] = entry

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(payload: dict[str, Any]) -> str:
        canonical = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def get(self, key: str) -> dict[str, Any] | None:
        return self._entries.get(key)

    def put(self, key: str, record: dict[str, Any]) -> None:
        entry = {"key": key, "created": round(time.time(), 3), **record}
        self._entries[key] = entry
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
