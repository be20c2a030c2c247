"""A deterministic OpenAI-compatible server for tests and the offline demo.

``python -m data_prep.synth.echo_server --port 8000`` serves ``POST /v1/chat/completions``
and ``GET /v1/models`` like ``vllm serve`` does, answering with a deterministic "textbook"
restatement of the user message (first sentences, bullet-pointed) and real token counts
(whitespace tokens). ``--fail-first N`` answers the first N requests with HTTP 503 to
exercise client retries. It is a generator, not a model: use ``vllm serve`` for real data.
"""
from __future__ import annotations

import argparse
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class EchoState:
    def __init__(self, fail_first: int = 0):
        self.fail_first = fail_first
        self.requests = 0
        self.lock = threading.Lock()


def generate(prompt: str, max_tokens: int) -> str:
    body = prompt.split("\n\n", 1)[-1]
    sentences = [s.strip() for s in re.split(r"(?<=[.!?다요])\s+", body) if s.strip()]
    text = "## 요약 설명\n" + "\n".join(f"- {s}" for s in sentences[:8])
    return " ".join(text.split(" ")[:max_tokens])


def make_handler(state: EchoState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _send(self, code: int, obj: dict) -> None:
            data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": "echo", "object": "model"}]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            try:
                req = json.loads(self.rfile.read(length))
            except ValueError:
                self._send(400, {"error": "bad json"})
                return
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": "not found"})
                return
            with state.lock:
                state.requests += 1
                fail = state.requests <= state.fail_first
            if fail:
                self._send(503, {"error": "warming up"})
                return
            prompt = "\n".join(m.get("content", "") for m in req.get("messages", []) if m.get("role") == "user")
            out = generate(prompt, int(req.get("max_tokens", 256)))
            self._send(200, {
                "id": f"cmpl-{state.requests}", "object": "chat.completion", "model": req.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": out}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(out.split()),
                          "total_tokens": len(prompt.split()) + len(out.split())},
            })

    return Handler


def serve(host: str = "127.0.0.1", port: int = 0, fail_first: int = 0) -> tuple[ThreadingHTTPServer, EchoState]:
    """Start in a background thread; returns (server, state). ``port=0`` picks a free port."""
    state = EchoState(fail_first)
    server = ThreadingHTTPServer((host, port), make_handler(state))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--fail-first", type=int, default=0)
    args = ap.parse_args()
    state = EchoState(args.fail_first)
    ThreadingHTTPServer((args.host, args.port), make_handler(state)).serve_forever()


if __name__ == "__main__":
    main()
