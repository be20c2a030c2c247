"""Arguments of ``midm data synth`` (kept apart so ``midm data --help`` stays import-free)."""
from __future__ import annotations

import argparse


def add_synth_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN", help=".jsonl/.jsonl.gz with `text` (and `id`)")
    p.add_argument("output", metavar="OUT", help="output .jsonl (appended to on resume); OUT.summary.json beside it")
    p.add_argument("--task", choices=["rewrite", "qa", "translate"], default="rewrite",
                   help="rewrite: textbook-style rewrite; qa: question-answer pairs; translate: ko<->en")
    p.add_argument("--endpoint", default="http://127.0.0.1:8000/v1", help="OpenAI-compatible base URL (…/v1)")
    p.add_argument("--model", required=True, help="model name as served by the endpoint")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key (optional)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight at once (default 8)")
    p.add_argument("--max-retries", type=int, default=5,
                   help="retries of a failed request before the document is counted as failed (default 5)")
    p.add_argument("--backoff", type=float, default=1.0, help="first retry delay in seconds (doubles, with jitter; a longer Retry-After wins)")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="seconds one attempt may take in all (connect, send, the whole answer); then it is retried")
    p.add_argument("--max-tokens", type=int, default=1024, help="max_tokens of each completion (default 1024)")
    p.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default 0.7)")
    p.add_argument("--seed", type=int, default=0, help="seed sent with each request (default 0)")
    p.add_argument("--max-input-chars", type=int, default=6000,
                   help="documents longer than this many characters are cut before prompting (default 6000)")
    p.add_argument("--cache", help="SQLite response cache (default: OUT.cache.sqlite)")
    p.add_argument("--limit", type=int, default=-1, help="process at most N documents")
