"""``midm data synth``: concurrent, cached, resumable generation with token accounting."""
from __future__ import annotations

import gzip
import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from data_prep.synth.client import ChatClient, PermanentError, ResponseCache
from data_prep.synth.prompts import messages_for


def _read_docs(path: str):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f):
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("text"), str) and rec["text"].strip():
                yield str(rec.get("id", f"{Path(path).name}#{i}")), rec["text"]


def _hangul_ratio(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum("가" <= c <= "힣" for c in letters) / len(letters) if letters else 0.0


def main_synth(args) -> int:
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    done: set[str] = set()
    if out.exists():  # resume: every source id already written is skipped
        for line in out.read_text(encoding="utf-8").splitlines():
            try:
                done.add(json.loads(line)["source_id"])
            except (ValueError, KeyError):
                continue
    cache = ResponseCache(args.cache or f"{out}.cache.sqlite")
    client = ChatClient(args.endpoint, os.environ.get(args.api_key_env), cache, max_retries=args.max_retries,
                        backoff=args.backoff, timeout=args.timeout)
    stats = Counter()
    t0 = time.perf_counter()

    def work(doc_id: str, text: str):
        text = text[: args.max_input_chars]
        request = {"model": args.model, "messages": messages_for(args.task, text, _hangul_ratio(text)),
                   "max_tokens": args.max_tokens, "temperature": args.temperature, "seed": args.seed}
        return doc_id, client.complete(request)

    with open(out, "a", encoding="utf-8") as sink, ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        pending = set()

        def drain(block: bool) -> None:
            nonlocal pending
            if not pending:
                return
            finished, pending = wait(pending, return_when=FIRST_COMPLETED) if block else (
                {f for f in pending if f.done()}, {f for f in pending if not f.done()})
            for fut in finished:
                try:
                    doc_id, comp = fut.result()
                except PermanentError as err:
                    stats["failed"] += 1
                    print(f"synth: {err}", file=sys.stderr)
                    continue
                sink.write(json.dumps({"id": f"{doc_id}#{args.task}", "source_id": doc_id, "task": args.task,
                                       "model": args.model, "text": comp.text}, ensure_ascii=False) + "\n")
                sink.flush()
                stats["written"] += 1
                stats["cache_hits" if comp.cached else "requests"] += 1
                stats["retries"] += max(0, comp.attempts - 1)
                key = "cached_" if comp.cached else ""
                stats[f"{key}prompt_tokens"] += comp.prompt_tokens
                stats[f"{key}completion_tokens"] += comp.completion_tokens

        for n, (doc_id, text) in enumerate(_read_docs(args.input)):
            if 0 <= args.limit <= n:
                break
            stats["read"] += 1
            if doc_id in done:
                stats["skipped_done"] += 1
                continue
            pending.add(pool.submit(work, doc_id, text))
            if len(pending) >= 2 * args.concurrency:
                drain(block=True)
        while pending:
            drain(block=True)
    cache.close()
    summary = {"task": args.task, "model": args.model, "endpoint": args.endpoint, "output": str(out),
               "seconds": round(time.perf_counter() - t0, 3), **{k: stats[k] for k in (
                   "read", "skipped_done", "written", "failed", "requests", "cache_hits", "retries",
                   "prompt_tokens", "completion_tokens", "cached_prompt_tokens", "cached_completion_tokens")}}
    Path(f"{out}.summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(summary, ensure_ascii=False))
    return 1 if stats["failed"] else 0
