"""A small OpenAI-compatible chat client: deadlines, retries, a validated response cache, token counts.

Standard library only (``http.client`` + ``sqlite3``): the endpoint is whatever ``vllm serve`` (or any
OpenAI-compatible server) exposes at ``/v1/chat/completions``. Environment proxies (``https_proxy``,
``no_proxy``, …) are honoured as ``urllib`` would.

* **Deadline.** ``timeout`` bounds one whole attempt — connect, send, status line, headers and body —
  not each socket read: a watchdog shuts the socket down when it expires, so a server dribbling one
  byte a second cannot stretch a 2 s request to minutes.
* **Retries.** Connection errors, deadlines, truncated / non-UTF-8 / non-JSON bodies and HTTP
  408/409/425/429/5xx are retried with exponential backoff and jitter; a ``Retry-After`` header
  (seconds or an HTTP date, RFC 9110 §10.2.3) is honoured, up to ``MAX_RETRY_AFTER``.
* **Validation before caching.** A body is cached only once it is a well-formed answer
  (:func:`parse_completion`): UTF-8 JSON, a string ``content`` that is not empty, numeric ``usage``,
  and no longer than ``max_tokens`` allows. Anything else fails with a ``reason`` the run counts.
  The cache key is the SHA-256 of the canonical request JSON, so a re-run with the same settings is
  free; cached bodies are validated again when read.
"""
from __future__ import annotations

import email.utils
import hashlib
import http.client
import json
import random
import socket
import sqlite3
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass

RETRYABLE_HTTP = {408, 409, 425, 429, 500, 502, 503, 504}
# Failures worth another attempt; the others (bad usage, null content, over-long answers, other 4xx)
# would come back the same.
RETRYABLE_REASONS = {"deadline", "connection", "truncated", "non_utf8", "invalid_json"}
MAX_RETRY_AFTER = 600.0  # seconds: a longer Retry-After is capped (and the wait is reported)
# Upper bound on UTF-8 bytes per generated token. BPE tokens average 3–4 bytes of Korean or English
# text; 64 leaves room for long whitespace/punctuation tokens while rejecting answers that ignore
# max_tokens by orders of magnitude (5 MB for max_tokens 16).
MAX_BYTES_PER_TOKEN = 64


class RequestFailed(RuntimeError):
    """A request that did not produce a usable answer; ``reason`` is the summary's failure key."""

    def __init__(self, reason: str, message: str, retryable: bool | None = None):
        super().__init__(message)
        self.reason = reason
        self.retryable = reason in RETRYABLE_REASONS if retryable is None else retryable


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    attempts: int


def _token_count(usage: dict, key: str) -> int:
    value = usage.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RequestFailed("bad_usage", f"usage.{key} is {value!r}, not a token count")
    return value


def parse_completion(raw: bytes | dict, max_tokens: int | None) -> tuple[dict, str, int, int]:
    """Validate one ``/v1/chat/completions`` body → ``(body, text, prompt_tokens, completion_tokens)``.

    ``raw`` is the HTTP body (bytes) or an already-decoded cached body. Raises :class:`RequestFailed`
    with reason ``non_utf8``, ``invalid_json``, ``malformed`` (no ``choices[0].message``),
    ``null_content``, ``empty_content``, ``bad_usage`` (a token count that is not a non-negative
    integer) or ``over_long`` (``completion_tokens`` > ``max_tokens``, or more than
    ``max_tokens × MAX_BYTES_PER_TOKEN`` UTF-8 bytes of text).
    """
    body = raw
    if isinstance(raw, bytes):
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise RequestFailed("non_utf8", f"response body is not UTF-8 ({err})") from err
        try:
            body = json.loads(decoded)
        except ValueError as err:
            raise RequestFailed("invalid_json", f"response body is not JSON ({err}): {decoded[:120]!r}") from err
    try:
        message = body["choices"][0]["message"]
        text = message["content"]
    except (KeyError, IndexError, TypeError) as err:
        raise RequestFailed("malformed", f"no choices[0].message.content in {str(body)[:200]}") from err
    if text is None:
        raise RequestFailed("null_content", "choices[0].message.content is null")
    if not isinstance(text, str):
        raise RequestFailed("malformed", f"choices[0].message.content is a {type(text).__name__}, not text")
    if not text.strip():
        raise RequestFailed("empty_content", "choices[0].message.content is empty")
    usage = body.get("usage") or {}
    if not isinstance(usage, dict):
        raise RequestFailed("bad_usage", f"usage is {usage!r}, not an object")
    prompt_tokens, completion_tokens = _token_count(usage, "prompt_tokens"), _token_count(usage, "completion_tokens")
    if max_tokens is not None:
        if completion_tokens > max_tokens:
            raise RequestFailed("over_long", f"usage says {completion_tokens} completion tokens > max_tokens "
                                             f"{max_tokens}")
        n_bytes = len(text.encode("utf-8"))
        if n_bytes > max_tokens * MAX_BYTES_PER_TOKEN:
            raise RequestFailed("over_long", f"answer of {n_bytes:,} bytes cannot be ≤ max_tokens {max_tokens} "
                                             f"tokens (at most {MAX_BYTES_PER_TOKEN} bytes/token)")
    return body, text, prompt_tokens, completion_tokens


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` (delta-seconds or an HTTP date) → seconds to wait, or None when absent/invalid."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class ResponseCache:
    def __init__(self, path: str):
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, body TEXT NOT NULL)")
        self._lock = threading.Lock()

    def get(self, key: str) -> dict | None:
        with self._lock:
            row = self._conn.execute("SELECT body FROM responses WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except ValueError:
            return None

    def put(self, key: str, body: dict) -> None:
        with self._lock:
            self._conn.execute("INSERT OR REPLACE INTO responses (key, body) VALUES (?, ?)", (key, json.dumps(body)))

    def delete(self, key: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM responses WHERE key = ?", (key,))

    def close(self) -> None:
        self._conn.close()


class ChatClient:
    """``complete(request)`` → :class:`Completion`, or :class:`RequestFailed` after the retries."""

    def __init__(self, endpoint: str, api_key: str | None, cache: ResponseCache | None, *, max_retries: int = 5,
                 backoff: float = 1.0, timeout: float = 120.0):
        self.url = endpoint.rstrip("/") + "/chat/completions"
        self._parts = urllib.parse.urlsplit(self.url)
        if self._parts.scheme not in ("http", "https") or not self._parts.hostname:
            raise ValueError(f"--endpoint {endpoint!r} is not an http(s) URL")
        self.api_key = api_key
        self.cache = cache
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout

    # ------------------------------------------------------------ one attempt
    def _connection(self) -> tuple[http.client.HTTPConnection, str]:
        """(connection, request target), through the environment's proxy when one applies."""
        p = self._parts
        target = urllib.parse.urlunsplit(("", "", p.path or "/", p.query, ""))
        proxy = urllib.request.getproxies().get(p.scheme)
        if proxy and not urllib.request.proxy_bypass(p.hostname):
            proxy_parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            if p.scheme == "https":
                conn = http.client.HTTPSConnection(proxy_parts.hostname, proxy_parts.port or 80, timeout=self.timeout)
                conn.set_tunnel(p.hostname, p.port or 443)
                return conn, target
            return http.client.HTTPConnection(proxy_parts.hostname, proxy_parts.port or 80,
                                              timeout=self.timeout), self.url
        cls = http.client.HTTPSConnection if p.scheme == "https" else http.client.HTTPConnection
        return cls(p.hostname, p.port, timeout=self.timeout), target

    def _post(self, payload: bytes, max_body: int) -> tuple[int, http.client.HTTPMessage, bytes]:
        """(status, headers, body) of one POST, all of it within ``self.timeout`` seconds.

        Raises RequestFailed: ``deadline`` (the watchdog fired), ``connection`` (refused/reset),
        ``truncated`` (fewer bytes than Content-Length), ``over_long`` (body beyond ``max_body``).
        """
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        conn, target = self._connection()
        expired = threading.Event()
        sockets: list[socket.socket] = []  # the response keeps the socket after conn.sock is dropped

        def expire() -> None:
            expired.set()
            for sock in sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # unblocks a recv in progress
                except OSError:
                    pass

        watchdog = threading.Timer(self.timeout, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            conn.connect()
            sockets.append(conn.sock)
            if expired.is_set():
                expire()
            conn.request("POST", target, body=payload, headers=headers)
            resp = conn.getresponse()
            chunks, size = [], 0
            while True:
                chunk = resp.read1(1 << 16)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_body:
                    raise RequestFailed("over_long", f"response body exceeds {max_body:,} bytes "
                                                     "(far beyond what max_tokens allows)")
                chunks.append(chunk)
            if expired.is_set():
                raise RequestFailed("deadline", f"no complete answer within --timeout {self.timeout:g} s")
            if resp.length:  # bytes promised by Content-Length that never came
                raise RequestFailed("truncated", f"body ended after {size:,} bytes, {resp.length:,} missing")
            return resp.status, resp.headers, b"".join(chunks)
        except RequestFailed:
            raise
        except (OSError, http.client.HTTPException) as err:
            if expired.is_set():
                raise RequestFailed("deadline", f"no complete answer within --timeout {self.timeout:g} s") from err
            if isinstance(err, http.client.IncompleteRead):
                raise RequestFailed("truncated", f"body ended early ({err})") from err
            raise RequestFailed("connection", f"{type(err).__name__} talking to {self.url}: {err}") from err
        finally:
            watchdog.cancel()
            conn.close()

    # ------------------------------------------------------------ with retries
    def _delay(self, attempt: int, retry_after: float | None = None) -> float:
        delay = self.backoff * (2 ** (attempt - 1)) * (0.5 + random.random())
        return max(delay, min(retry_after, MAX_RETRY_AFTER)) if retry_after is not None else delay

    def complete(self, request: dict) -> Completion:
        """One chat completion for ``request`` (cached when valid). Raises RequestFailed with a reason."""
        payload = json.dumps(request, sort_keys=True, ensure_ascii=False).encode("utf-8")
        key = hashlib.sha256(payload).hexdigest()
        max_tokens = request.get("max_tokens")
        max_body = (1 << 20) + 3 * MAX_BYTES_PER_TOKEN * (max_tokens or (1 << 20))  # JSON escapes ≤ 3× UTF-8
        if self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                try:
                    _, text, p_tok, c_tok = parse_completion(cached, max_tokens)
                    return Completion(text, p_tok, c_tok, cached=True, attempts=0)
                except RequestFailed:  # written by an older, laxer version: ask again
                    self.cache.delete(key)
        attempt = 0
        while True:
            attempt += 1
            retry_after = None
            try:
                status, headers, raw = self._post(payload, max_body)
                if status != 200:
                    snippet = raw[:300].decode("utf-8", "replace")
                    retry_after = retry_after_seconds(headers.get("Retry-After"))
                    raise RequestFailed(f"http_{status}", f"HTTP {status} from {self.url}: {snippet!r}",
                                        retryable=status in RETRYABLE_HTTP)
                body, text, p_tok, c_tok = parse_completion(raw, max_tokens)
            except RequestFailed as err:
                if not err.retryable or attempt > self.max_retries:
                    raise
                time.sleep(self._delay(attempt, retry_after))
                continue
            if self.cache is not None:
                self.cache.put(key, body)
            return Completion(text, p_tok, c_tok, cached=False, attempts=attempt)
