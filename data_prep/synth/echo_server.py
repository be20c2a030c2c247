"""A deterministic OpenAI-compatible server for tests and the offline demo.

``python -m data_prep.synth.echo_server --port 8000`` serves ``POST /v1/chat/completions``
and ``GET /v1/models`` like ``vllm serve`` does, answering with a deterministic "textbook"
restatement of the user message (first sentences, bullet-pointed) and real token counts
(whitespace tokens). ``--fail-first N`` answers the first N requests with HTTP 503 to
exercise client retries. It is a generator, not a model: use ``vllm serve`` for real data.
"""
from __future__ import annotations

import argparse
import re
from http.server import ThreadingHTTPServer

from midm.openai_http import ChatServerState, chat_handler, start


def generate(prompt: str, max_tokens: int) -> str:
    body = prompt.split("\n\n", 1)[-1]
    sentences = [s.strip() for s in re.split(r"(?<=[.!?다요])\s+", body) if s.strip()]
    text = "## 요약 설명\n" + "\n".join(f"- {s}" for s in sentences[:8])
    return " ".join(text.split(" ")[:max_tokens])


def reply(body: dict, n: int) -> dict:
    """The ``chat.completion`` for request ``n``: :func:`generate` on the user turns, whitespace token counts."""
    prompt = "\n".join(m.get("content", "") for m in body["messages"] if m.get("role") == "user")
    out = generate(prompt, int(body.get("max_tokens", 256)))
    return {
        "id": f"cmpl-{n}", "object": "chat.completion", "model": body.get("model"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": out}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(out.split()),
                  "total_tokens": len(prompt.split()) + len(out.split())},
    }


def serve(host: str = "127.0.0.1", port: int = 0, fail_first: int = 0) -> tuple[ThreadingHTTPServer, ChatServerState]:
    """Start in a background thread; returns (server, state). ``port=0`` picks a free port."""
    state = ChatServerState("echo", fail_first)
    return start(host, port, state, reply), state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--fail-first", type=int, default=0)
    args = ap.parse_args()
    ThreadingHTTPServer((args.host, args.port), chat_handler(ChatServerState("echo", args.fail_first), reply)).serve_forever()


if __name__ == "__main__":
    main()
