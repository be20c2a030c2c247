"""``midm data synth``: concurrent, cached, resumable generation with token accounting.

Accounting: every input line is *read* and ends in exactly one bucket,

    read = written + failed + Σ skipped[reason]

with ``skipped`` reasons ``malformed`` (not a JSON object), ``empty`` (blank line, no or blank
``text``), ``duplicate_id`` (an ``id`` seen earlier in this input) and ``done`` (already in OUT from
an earlier run), and ``failed_by_reason`` splitting ``failed`` by the client's reasons (``deadline``,
``truncated``, ``non_utf8``, ``bad_usage``, ``null_content``, ``over_long``, ``http_503``, …).

Resume safety: records are appended one whole line at a time. A run killed mid-record leaves a last
line without its newline; the next run truncates OUT back to its last complete record before
appending (reported as ``repaired_bytes``), so a partial record is never taken as written.
"""
from __future__ import annotations

import gzip
import json
import os
import sys
import time
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from data_prep.synth.client import ChatClient, RequestFailed, ResponseCache
from data_prep.synth.prompts import messages_for
from midm.errors import MidmError

SKIP_REASONS = ("malformed", "empty", "duplicate_id", "done")


class SynthOutputError(MidmError):
    """OUT exists but is not a file this stage wrote (a damaged line before its end)."""


def read_docs(path: str):
    """Yield ``(skip_reason | None, doc_id, text)`` for every line of a ``.jsonl[.gz]`` file."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f):
            if not line.strip():
                yield "empty", None, None
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                yield "malformed", None, None
                continue
            if not isinstance(rec, dict):
                yield "malformed", None, None
            elif not isinstance(rec.get("text"), str) or not rec["text"].strip():
                yield "empty", None, None
            else:
                yield None, str(rec.get("id", f"{Path(path).name}#{i}")), rec["text"]


def prepare_output(out: Path) -> tuple[set[str], int]:
    """(source ids already written, bytes cut) — truncating OUT to its last complete record.

    Raises SynthOutputError when a damaged line is followed by more records (OUT was edited or
    written by something else): cutting there would drop good records.
    """
    done: set[str] = set()
    if not out.exists():
        return done, 0
    data = out.read_bytes()
    good_end, pos = 0, 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        try:
            if nl < 0:
                raise ValueError("no newline: the record was cut short")
            done.add(json.loads(data[pos:nl].decode("utf-8"))["source_id"])
        except (ValueError, KeyError, TypeError) as err:
            if end < len(data):
                line_no = data.count(b"\n", 0, pos) + 1
                raise SynthOutputError(f"{out}: line {line_no} is not a synth record "
                                       f"({err}) and more records follow; move the file aside or fix that line")
            break
        good_end, pos = end, end
    cut = len(data) - good_end
    if cut:
        with open(out, "r+b") as f:
            f.truncate(good_end)
        print(f"synth: {out} ended in a partial record ({cut:,} bytes, an interrupted write); cut it off",
              file=sys.stderr)
    return done, cut


def _hangul_ratio(text: str) -> float:
    letters = [c for c in text if c.isalpha()]
    return sum("가" <= c <= "힣" for c in letters) / len(letters) if letters else 0.0


def _write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def main_synth(args) -> int:
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        done, repaired = prepare_output(out)
    except SynthOutputError as err:
        print(f"midm data synth: {err}", file=sys.stderr)
        return 2
    try:
        client = ChatClient(args.endpoint, os.environ.get(args.api_key_env), None, max_retries=args.max_retries,
                            backoff=args.backoff, timeout=args.timeout)
    except ValueError as err:
        print(f"midm data synth: {err}", file=sys.stderr)
        return 2
    cache = client.cache = ResponseCache(args.cache or f"{out}.cache.sqlite")
    stats, skipped, failed = Counter(), Counter(), Counter()
    t0 = time.perf_counter()

    def work(doc_id: str, text: str):
        text = text[: args.max_input_chars]
        request = {"model": args.model, "messages": messages_for(args.task, text, _hangul_ratio(text)),
                   "max_tokens": args.max_tokens, "temperature": args.temperature, "seed": args.seed}
        return doc_id, client.complete(request)

    with open(out, "a", encoding="utf-8") as sink, ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        pending = set()

        def drain() -> None:
            nonlocal pending
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                try:
                    doc_id, comp = fut.result()
                except RequestFailed as err:
                    failed[err.reason] += 1
                    print(f"synth: {err.reason}: {err}", file=sys.stderr)
                    continue
                except Exception as err:  # a client bug must not lose the run's accounting
                    failed["client_error"] += 1
                    print(f"synth: client_error: {type(err).__name__}: {err}", file=sys.stderr)
                    continue
                line = json.dumps({"id": f"{doc_id}#{args.task}", "source_id": doc_id, "task": args.task,
                                   "model": args.model, "text": comp.text}, ensure_ascii=False) + "\n"
                sink.write(line)  # one whole line per record, flushed: a kill can only cut the last one
                sink.flush()
                stats["written"] += 1
                stats["cache_hits" if comp.cached else "requests"] += 1
                stats["retries"] += max(0, comp.attempts - 1)
                key = "cached_" if comp.cached else ""
                stats[f"{key}prompt_tokens"] += comp.prompt_tokens
                stats[f"{key}completion_tokens"] += comp.completion_tokens

        seen: set[str] = set()
        for skip, doc_id, text in read_docs(args.input):
            if 0 <= args.limit <= stats["read"]:
                break
            stats["read"] += 1
            if skip is None and doc_id in seen:
                skip = "duplicate_id"
            elif skip is None and doc_id in done:
                skip = "done"
            if skip is not None:
                skipped[skip] += 1
                continue
            seen.add(doc_id)
            pending.add(pool.submit(work, doc_id, text))
            if len(pending) >= 2 * args.concurrency:
                drain()
        while pending:
            drain()
    cache.close()
    n_failed = sum(failed.values())
    accounted = stats["written"] + n_failed + sum(skipped.values())
    summary = {"task": args.task, "model": args.model, "endpoint": args.endpoint, "output": str(out),
               "seconds": round(time.perf_counter() - t0, 3), "read": stats["read"], "written": stats["written"],
               "failed": n_failed, "failed_by_reason": dict(sorted(failed.items())),
               "skipped": {r: skipped[r] for r in SKIP_REASONS}, "balanced": accounted == stats["read"],
               "repaired_bytes": repaired,
               **{k: stats[k] for k in ("requests", "cache_hits", "retries", "prompt_tokens", "completion_tokens",
                                        "cached_prompt_tokens", "cached_completion_tokens")}}
    _write_json_atomic(Path(f"{out}.summary.json"), summary)
    print(json.dumps(summary, ensure_ascii=False))
    if not summary["balanced"]:  # a bug, not bad input: say so loudly
        print(f"synth: accounting does not add up: read {stats['read']} != {accounted}", file=sys.stderr)
        return 1
    return 1 if n_failed else 0
