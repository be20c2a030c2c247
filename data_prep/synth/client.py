"""A small OpenAI-compatible chat client: retries with backoff, a response cache, token counts.

Standard library only (``urllib`` + ``sqlite3``): the endpoint is whatever ``vllm serve``
(or any OpenAI-compatible server) exposes at ``/v1/chat/completions``. Retries cover
connection errors, timeouts, HTTP 408/409/429 and 5xx; other 4xx are permanent. The cache key
is the SHA-256 of the canonical request JSON, so a re-run with the same settings is free.
"""
from __future__ import annotations

import hashlib
import json
import random
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

RETRYABLE_HTTP = {408, 409, 425, 429, 500, 502, 503, 504}


class PermanentError(RuntimeError):
    pass


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    attempts: int


class ResponseCache:
    def __init__(self, path: str):
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, body TEXT NOT NULL)")
        self._lock = threading.Lock()

    def get(self, key: str) -> dict | None:
        with self._lock:
            row = self._conn.execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, body: dict) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO responses (key, body) VALUES (?, ?)", (key, json.dumps(body)))

    def close(self) -> None:
        self._conn.close()


class ChatClient:
    def __init__(self, endpoint: str, api_key: str | None, cache: ResponseCache | None, *, max_retries: int = 5,
                 backoff: float = 1.0, timeout: float = 120.0):
        self.url = endpoint.rstrip("/") + "/chat/completions"
        self.api_key = api_key
        self.cache = cache
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout

    def _post(self, payload: bytes) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        req = urllib.request.Request(self.url, data=payload, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return json.loads(resp.read().decode("utf-8"))

    def complete(self, request: dict) -> Completion:
        payload = json.dumps(request, sort_keys=True, ensure_ascii=False).encode("utf-8")
        key = hashlib.sha256(payload).hexdigest()
        body = self.cache.get(key) if self.cache else None
        attempts = 0
        cached = body is not None
        while body is None:
            attempts += 1
            try:
                body = self._post(payload)
            except urllib.error.HTTPError as err:
                if err.code not in RETRYABLE_HTTP or attempts > self.max_retries:
                    raise PermanentError(f"HTTP {err.code} from {self.url}: {err.read()[:300]!r}") from err
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as err:
                if attempts > self.max_retries:
                    raise PermanentError(f"{type(err).__name__} talking to {self.url}: {err}") from err
            if body is None:
                time.sleep(self.backoff * (2 ** (attempts - 1)) * (0.5 + random.random()))
        try:
            text = body["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as err:
            raise PermanentError(f"malformed completion from {self.url}: {str(body)[:300]}") from err
        if not cached and self.cache:
            self.cache.put(key, body)
        usage = body.get("usage") or {}
        return Completion(text=text, prompt_tokens=int(usage.get("prompt_tokens", 0)),
                          completion_tokens=int(usage.get("completion_tokens", 0)), cached=cached, attempts=attempts)
