"""A minimal OpenAI-compatible chat server over a local Hugging Face model (``transformers``).

    python -m evaluation.judge.serve --model HF_DIR [--port 8000] [--served-model-name NAME]

Serves ``GET /v1/models`` and ``POST /v1/chat/completions`` (``messages``, ``temperature``,
``max_tokens``, ``seed``; non-streaming), formatting the messages with the tokenizer's chat template
and generating with ``model.generate`` (greedy at temperature 0, sampling otherwise). Real token
counts come back in ``usage``. One request is generated at a time (a lock around the model).

It lets ``midm eval --judge`` run offline against any local HF chat model — on a GPU a real judge
(e.g. a Qwen or EXAONE instruct model), in the tests a tiny Llama — when ``vllm serve`` is not at
hand. ``--fail-first N`` answers the first N chat requests with HTTP 503 (to exercise retries).
"""
from __future__ import annotations

import argparse
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from midm.openai_http import ChatServerState, start


class ChatModel:
    """A HF causal LM + tokenizer answering chat requests."""

    def __init__(self, model_dir: Path, *, device: str = "cpu", default_max_tokens: int = 512):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        if not self.tokenizer.chat_template:
            raise ValueError(f"{model_dir}: the tokenizer has no chat template; a chat server needs one")
        self.model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32).to(device).eval()
        self.device, self.default_max_tokens = device, default_max_tokens
        self.lock = threading.Lock()

    def chat(self, messages: list[dict[str, str]], *, temperature: float, max_tokens: int | None,
             seed: int | None) -> tuple[str, int, int, str]:
        """Returns (text, prompt tokens, completion tokens, finish reason)."""
        import torch

        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)["input_ids"].to(self.device)
        limit = max_tokens or self.default_max_tokens
        sample = temperature > 0
        kwargs: dict[str, Any] = {"max_new_tokens": limit, "do_sample": sample,
                                  "pad_token_id": self.tokenizer.pad_token_id or self.tokenizer.eos_token_id}
        if sample:
            kwargs["temperature"] = temperature
        with self.lock, torch.no_grad():
            if seed is not None:
                torch.manual_seed(seed)
            out = self.model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)[0, ids.shape[1]:]
        text = self.tokenizer.decode(out, skip_special_tokens=True)
        finish = "length" if len(out) >= limit and int(out[-1]) != self.tokenizer.eos_token_id else "stop"
        return text, int(ids.shape[1]), int(len(out)), finish


class ServerState(ChatServerState):
    """:class:`midm.openai_http.ChatServerState` + the model and every generated reply, in order."""

    def __init__(self, model: ChatModel, name: str, fail_first: int = 0):
        super().__init__(name, fail_first)
        self.model = model
        self.replies: list[str] = []


def _reply(state: ServerState):
    def reply(body: dict[str, Any], n: int) -> dict[str, Any]:
        text, n_prompt, n_out, finish = state.model.chat(
            body["messages"], temperature=float(body.get("temperature", 1.0)), max_tokens=body.get("max_tokens"),
            seed=body.get("seed"))
        with state.lock:
            state.replies.append(text)
        return {"id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model", state.model_id),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
                "usage": {"prompt_tokens": n_prompt, "completion_tokens": n_out, "total_tokens": n_prompt + n_out}}

    return reply


def serve(model_dir: Path, *, host: str = "127.0.0.1", port: int = 0, name: str | None = None,
          fail_first: int = 0, device: str = "cpu", default_max_tokens: int = 512
          ) -> tuple[ThreadingHTTPServer, ServerState]:
    """Start in a background thread; ``port=0`` picks a free port (``server.server_address``).
    ``default_max_tokens`` applies to requests without ``max_tokens``."""
    state = ServerState(ChatModel(model_dir, device=device, default_max_tokens=default_max_tokens),
                        name or model_dir.name, fail_first)
    return start(host, port, state, _reply(state)), state


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--served-model-name", default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--fail-first", type=int, default=0)
    args = ap.parse_args(argv)
    server, state = serve(args.model, host=args.host, port=args.port, name=args.served_model_name,
                          fail_first=args.fail_first, device=args.device)
    print(f"serving {state.model_id} on http://{args.host}:{server.server_address[1]}/v1", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
