"""A misbehaving OpenAI-compatible server for the ``midm data synth`` fault tests (test helper).

A real ``ThreadingHTTPServer`` on 127.0.0.1. Each document picks its fault with a marker in its text,
``[[fault:NAME]]``, so the behaviour is fixed per document whatever the client's concurrency:

======================  ===========================================================================
``ok`` (no marker)      a normal answer with honest ``usage``
``retry_after``         first request: ``429`` with ``Retry-After: 1``; later requests: ``ok``
``dribble``             a correct answer sent one byte every 0.25 s (a whole body takes minutes)
``truncated``           ``Content-Length`` of the whole body, half of it sent, connection closed
``non_utf8``            ``200`` with a body that is not UTF-8
``bad_usage``           ``usage.completion_tokens`` is the string ``"many"``
``null_content``        ``message.content`` is ``null``
``huge``                a 5 MB answer whatever ``max_tokens`` says, with ``usage`` claiming 16 tokens
``big``                 an honest answer of ``big_chars`` characters (for the kill-during-write test)
======================  ===========================================================================

``state.times[name]`` records when each request for a fault arrived (``time.monotonic()``).
"""
from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MARKER = re.compile(r"\[\[fault:(\w+)\]\]")


class FaultState:
    def __init__(self, big_chars: int = 200_000):
        self.big_chars = big_chars
        self.times: dict[str, list[float]] = defaultdict(list)
        self.lock = threading.Lock()

    @property
    def requests(self) -> int:
        with self.lock:
            return sum(len(v) for v in self.times.values())


def _answer(req: dict, text: str, completion_tokens) -> dict:
    return {"id": "cmpl-x", "object": "chat.completion", "model": req.get("model"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": completion_tokens, "total_tokens": 10}}


def make_handler(state: FaultState):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _head(self, code: int, length: int, extra: dict | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(length))
            self.send_header("Connection", "close")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()

        def _json(self, code: int, obj: dict, extra: dict | None = None) -> None:
            data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
            self._head(code, len(data), extra)
            self.wfile.write(data)

        def do_POST(self):
            req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            prompt = "\n".join(m.get("content") or "" for m in req.get("messages", []))
            match = MARKER.search(prompt)
            fault = match.group(1) if match else "ok"
            with state.lock:
                state.times[fault].append(time.monotonic())
                seen = len(state.times[fault])
            words = prompt.split()[-8:]
            good = _answer(req, "## 요약\n" + " ".join(words), len(words) + 1)
            try:
                if fault == "retry_after" and seen == 1:
                    self._json(429, {"error": "rate limited"}, {"Retry-After": "1"})
                elif fault == "dribble":
                    data = json.dumps(good).encode()
                    self._head(200, len(data))
                    for i in range(len(data)):
                        self.wfile.write(data[i:i + 1])
                        self.wfile.flush()
                        time.sleep(0.25)
                elif fault == "truncated":
                    data = json.dumps(good).encode()
                    self._head(200, len(data))
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                elif fault == "non_utf8":
                    data = json.dumps(good, ensure_ascii=False).encode().replace("요약".encode(), b"\xff\xfe")
                    self._head(200, len(data))
                    self.wfile.write(data)
                elif fault == "bad_usage":
                    self._json(200, _answer(req, good["choices"][0]["message"]["content"], "many"))
                elif fault == "null_content":
                    self._json(200, _answer(req, None, 0))
                elif fault == "huge":
                    self._json(200, _answer(req, "가" * ((5 << 20) // 3), 16))
                elif fault == "big":
                    self._json(200, _answer(req, ("나" * 99 + "\n") * (state.big_chars // 100), state.big_chars // 2))
                else:
                    self._json(200, good)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (deadline): fine
                pass
            self.close_connection = True

    return Handler


def serve_faults(big_chars: int = 200_000) -> tuple[ThreadingHTTPServer, FaultState]:
    """Start on a free port in a daemon thread; returns (server, state)."""
    state = FaultState(big_chars)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state
