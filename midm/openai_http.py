"""The HTTP side of our OpenAI-compatible chat servers (``GET /v1/models``, ``POST /v1/chat/completions``).

Two servers speak it: ``data_prep.synth.echo_server`` (a deterministic generator for tests and the
offline demo) and ``evaluation.judge.serve`` (a local Hugging Face chat model as the judge). They
differ only in how a reply is made, so the routing, JSON parsing, ``--fail-first N`` warm-up 503s
and OpenAI-style errors (``{"error": {"message": ...}}``) live here once. Standard library only.
"""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

Reply = Callable[[dict[str, Any], int], dict[str, Any]]  # (request body, request number) -> completion object


class ChatServerState:
    """Requests seen (in arrival order) and how many to refuse first with HTTP 503 (client retry tests)."""

    def __init__(self, model_id: str, fail_first: int = 0):
        self.model_id, self.fail_first = model_id, fail_first
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()


def chat_handler(state: ChatServerState, reply: Reply) -> type[BaseHTTPRequestHandler]:
    """A request handler class: ``reply(body, n)`` makes the ``chat.completion`` object of request n
    (1-based) once the body has a ``messages`` list of ``{role, content}``."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet: tests and the demo read their own logs
            pass

        def _send(self, code: int, obj: dict) -> None:
            data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, code: int, message: str) -> None:
            self._send(code, {"error": {"message": message}})

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": state.model_id, "object": "model"}]})
            else:
                self._error(404, "not found")

        def do_POST(self):
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._error(404, "not found")
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                messages = body["messages"]
                if not (isinstance(messages, list) and all(isinstance(m, dict) and "role" in m and "content" in m
                                                           for m in messages)):
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                self._error(400, "body must be JSON with messages [{role, content}]")
                return
            with state.lock:
                state.requests.append(body)
                n = len(state.requests)
            if n <= state.fail_first:
                self._error(503, "warming up")
                return
            self._send(200, reply(body, n))

    return Handler


def start(host: str, port: int, state: ChatServerState, reply: Reply) -> ThreadingHTTPServer:
    """Serve in a daemon thread; ``port=0`` picks a free port (``server.server_address``)."""
    server = ThreadingHTTPServer((host, port), chat_handler(state, reply))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
