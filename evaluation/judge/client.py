"""A small client for any OpenAI-compatible chat endpoint (OpenAI, vLLM, ``transformers serve``,
:mod:`evaluation.judge.serve`), with retries, back-off and a persistent judgement cache.

``POST {base}/v1/chat/completions`` with ``model``, ``messages``, ``temperature`` and (when given)
``max_tokens``; the API key, if any, is read from the environment variable named in
:class:`JudgeConfig` (never from the command line). Transient failures — connection errors,
timeouts, HTTP 408/409/429/5xx — are retried ``max_retries`` times with exponential back-off
(``backoff_s · 2^attempt``, capped at 60 s, or the server's ``Retry-After``); anything else fails
at once with :class:`JudgeError`. Each answered request is stored in the cache before it is
used, so a re-run (or a crashed run started again) asks nothing twice.
"""
from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from evaluation.backends import EvalError
from evaluation.judge.cache import JudgeCache

RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class JudgeError(EvalError):
    """The judge endpoint refused or kept failing; the message names the URL and the last error."""


@dataclass(frozen=True)
class JudgeConfig:
    url: str                              # base URL, e.g. http://127.0.0.1:8000 or https://api.openai.com/v1
    model: str                            # judge model name sent in each request and recorded with scores
    api_key_env: str = "OPENAI_API_KEY"   # environment variable holding the key (may be unset for local servers)
    timeout_s: float = 300.0
    max_retries: int = 6
    backoff_s: float = 2.0
    cache: Path | None = None             # JSONL judgement cache (default: beside the results file)

    @property
    def endpoint(self) -> str:
        base = self.url.rstrip("/")
        if base.endswith("/chat/completions"):
            return base
        return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")


@dataclass
class JudgeStats:
    requests: int = 0          # HTTP requests that got an answer
    retries: int = 0
    cached: int = 0            # judgements served from the cache
    seconds: list[float] = field(default_factory=list)  # round-trip time per answered request

    def as_dict(self) -> dict[str, Any]:
        rt = sorted(self.seconds)
        return {"requests": self.requests, "retries": self.retries, "cached": self.cached,
                "round_trip_s_mean": round(sum(rt) / len(rt), 4) if rt else None,
                "round_trip_s_p50": round(rt[len(rt) // 2], 4) if rt else None}


class JudgeClient:
    """``complete(messages, temperature=…, max_tokens=…) -> str`` through the cache."""

    def __init__(self, config: JudgeConfig, cache: JudgeCache, *, sleep: Callable[[float], None] = time.sleep):
        self.config, self.cache, self._sleep = config, cache, sleep
        self.stats = JudgeStats()

    def complete(self, messages: list[dict[str, str]], *, temperature: float, max_tokens: int | None) -> str:
        payload: dict[str, Any] = {"model": self.config.model, "messages": messages, "temperature": temperature,
                                   "n": 1}
        if max_tokens is not None:
            payload["max_tokens"] = max_tokens
        key = JudgeCache.key(payload)
        hit = self.cache.get(key)
        if hit is not None:
            self.stats.cached += 1
            return hit["content"]
        content, usage = self._post(payload)
        self.cache.put(key, {"judge_model": self.config.model, "content": content, "usage": usage})
        return content

    def _post(self, payload: dict[str, Any]) -> tuple[str, dict]:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.config.api_key_env) if self.config.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        last = ""
        for attempt in range(self.config.max_retries + 1):
            request = urllib.request.Request(self.config.endpoint, data=data, headers=headers, method="POST")
            started = time.perf_counter()
            wait = None
            try:
                with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                    body = json.loads(response.read().decode("utf-8"))
                self.stats.seconds.append(time.perf_counter() - started)
                self.stats.requests += 1
                return _content(body, self.config.endpoint), body.get("usage") or {}
            except urllib.error.HTTPError as err:
                detail = err.read().decode("utf-8", "replace")[:300]
                if err.code not in RETRY_STATUS:
                    raise JudgeError(f"judge {self.config.endpoint} answered HTTP {err.code}: {detail}") from err
                last = f"HTTP {err.code}: {detail}"
                retry_after = err.headers.get("Retry-After") if err.headers else None
                wait = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
            except (urllib.error.URLError, socket.timeout, ConnectionError, TimeoutError) as err:
                last = f"{type(err).__name__}: {getattr(err, 'reason', err)}"
            if attempt < self.config.max_retries:
                self.stats.retries += 1
                self._sleep(min(60.0, wait if wait is not None else self.config.backoff_s * 2 ** attempt))
        raise JudgeError(f"judge {self.config.endpoint} failed after {self.config.max_retries + 1} attempts; "
                         f"last error: {last}")


def check_reachable(config: JudgeConfig, timeout_s: float = 10.0) -> None:
    """Open (and close) a TCP connection to the judge's host and port: an endpoint nobody listens on
    is named before the model generates any answer, not after.

    Raises:
        JudgeError: the URL has no host, or no connection within ``timeout_s`` (refused, unknown host, timeout).
    """
    from urllib.parse import urlsplit

    parts = urlsplit(config.endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise JudgeError(f"--judge {config.url!r} is not an http(s) URL (e.g. http://127.0.0.1:8000)")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout_s).close()
    except OSError as err:
        raise JudgeError(f"judge {config.endpoint} is not reachable ({type(err).__name__}: {err}); start the "
                         f"judge server or fix --judge before the answers are generated") from err


def _content(body: dict, endpoint: str) -> str:
    try:
        content = body["choices"][0]["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError) as err:
        raise JudgeError(f"judge {endpoint} returned no choices[0].message: {str(body)[:300]}") from err
    return content or ""
