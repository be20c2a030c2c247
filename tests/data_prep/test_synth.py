"""`midm data synth` against a real local HTTP server speaking the OpenAI chat API.

The server (data_prep.synth.echo_server) runs on 127.0.0.1 in a thread and answers
deterministically; nothing in the client is mocked: retries, cache and resume go over HTTP.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_prep.cli import main
from data_prep.synth.echo_server import serve
from tests.data_prep.conftest import write_jsonl


@pytest.fixture
def server():
    srv, state = serve(port=0, fail_first=3)
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1", state
    srv.shutdown()
    srv.server_close()


def _docs(n: int) -> list[dict]:
    return [{"id": f"d{i}", "text": f"문서 {i}번의 내용입니다. 한국어 교재를 만들기 위한 원문입니다. 세 번째 문장입니다."}
            for i in range(n)]


def test_concurrency_retries_cache_and_resume(tmp_path: Path, server):
    endpoint, state = server
    inp = write_jsonl(tmp_path / "in.jsonl", _docs(12))
    out = tmp_path / "synth.jsonl"
    common = ["synth", str(inp), str(out), "--endpoint", endpoint, "--model", "echo", "--concurrency", "4",
              "--backoff", "0.01", "--max-tokens", "64"]
    # first run stops after 5 documents (as if interrupted)
    assert main(common + ["--limit", "5"]) == 0
    first = json.loads(Path(f"{out}.summary.json").read_text())
    assert first["written"] == 5 and first["retries"] == 3 and first["requests"] == 5
    assert first["prompt_tokens"] > 0 and first["completion_tokens"] > 0
    # resume: only the 7 remaining documents are requested
    assert main(common) == 0
    second = json.loads(Path(f"{out}.summary.json").read_text())
    assert second["skipped"]["done"] == 5 and second["requests"] == 7
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["source_id"] for r in rows) == sorted(f"d{i}" for i in range(12))
    assert all(r["text"].startswith("## 요약 설명") and r["task"] == "rewrite" for r in rows)
    # a fresh output with the same cache costs no request at all
    served = len(state.requests)
    out2 = tmp_path / "again.jsonl"
    assert main(["synth", str(inp), str(out2), "--endpoint", endpoint, "--model", "echo", "--max-tokens", "64",
                 "--cache", f"{out}.cache.sqlite"]) == 0
    third = json.loads(Path(f"{out2}.summary.json").read_text())
    assert len(state.requests) == served and third["cache_hits"] == 12 and third["requests"] == 0
    assert third["cached_completion_tokens"] == first["completion_tokens"] + second["completion_tokens"]


def test_unreachable_endpoint_fails_cleanly(tmp_path: Path):
    inp = write_jsonl(tmp_path / "in.jsonl", _docs(1))
    rc = main(["synth", str(inp), str(tmp_path / "o.jsonl"), "--endpoint", "http://127.0.0.1:9/v1",
               "--model", "x", "--max-retries", "1", "--backoff", "0.01", "--timeout", "2"])
    assert rc == 1
    assert json.loads(Path(f"{tmp_path / 'o.jsonl'}.summary.json").read_text())["failed"] == 1
