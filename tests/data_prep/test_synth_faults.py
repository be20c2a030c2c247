"""`midm data synth` against a misbehaving OpenAI-compatible server (a real HTTP server on 127.0.0.1).

Nothing in the client is mocked: 429 + Retry-After, a body dribbled one byte at a time, truncated and
non-UTF-8 bodies, non-numeric usage, null content and 5 MB answers all go over real sockets, and the
kill test is a real kernel kill (SIGXFSZ from RLIMIT_FSIZE) in the middle of writing a record.
"""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_prep.cli import main
from tests.conftest import REPO
from tests.data_prep.conftest import write_jsonl
from tests.data_prep.synth_faults import serve_faults


@pytest.fixture(scope="module")
def faults():
    srv, state = serve_faults()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1", state
    srv.shutdown()
    srv.server_close()


def _docs(faults: list[str]) -> list[dict]:
    return [{"id": f"d{i}", "text": f"문서 {i}번의 내용입니다." + (f" [[fault:{f}]]" if f != "ok" else "")}
            for i, f in enumerate(faults)]


def _synth(inp: Path, out: Path, endpoint: str, *extra: str) -> tuple[int, dict]:
    rc = main(["synth", str(inp), str(out), "--endpoint", endpoint, "--model", "m", "--backoff", "0.01",
               "--max-tokens", "16", *extra])
    return rc, json.loads(Path(f"{out}.summary.json").read_text())


def _balanced(s: dict) -> bool:
    return s["balanced"] and s["read"] == s["written"] + s["failed"] + sum(s["skipped"].values())


def test_retry_after_is_honoured(tmp_path, faults):
    endpoint, state = faults
    rc, s = _synth(write_jsonl(tmp_path / "in.jsonl", _docs(["retry_after"])), tmp_path / "o.jsonl", endpoint)
    assert rc == 0 and s["written"] == 1 and s["retries"] == 1
    first, second = state.times["retry_after"][:2]
    assert second - first >= 0.95  # Retry-After: 1, although --backoff is 0.01 s


def test_timeout_is_a_deadline_for_the_whole_answer(tmp_path, faults):
    endpoint, _ = faults
    started = time.monotonic()
    rc, s = _synth(write_jsonl(tmp_path / "in.jsonl", _docs(["dribble"])), tmp_path / "o.jsonl", endpoint,
                   "--timeout", "1", "--max-retries", "1")
    elapsed = time.monotonic() - started
    assert rc == 1 and s["failed_by_reason"] == {"deadline": 1} and _balanced(s)
    assert elapsed < 5, elapsed  # two 1 s attempts; the dribbled body alone takes ~50 s


def test_bodies_that_are_not_answers_fail_by_reason_and_are_never_cached(tmp_path, faults):
    endpoint, state = faults
    bad = ["truncated", "non_utf8", "bad_usage", "null_content", "huge"]
    inp = write_jsonl(tmp_path / "in.jsonl", _docs(["ok", "ok", *bad, "ok"]))
    out = tmp_path / "o.jsonl"
    rc, s = _synth(inp, out, endpoint, "--max-retries", "1", "--concurrency", "3")
    assert rc == 1 and _balanced(s)
    assert s["written"] == 3 and s["failed_by_reason"] == {"bad_usage": 1, "non_utf8": 1, "null_content": 1,
                                                          "over_long": 1, "truncated": 1}
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["source_id"] for r in rows) == ["d0", "d1", "d7"]
    assert all(isinstance(r["text"], str) and 0 < len(r["text"].encode()) <= 16 * 64 for r in rows)
    # the re-run asks the server again for every failure (nothing bad was cached) and skips what is done
    asked = {f: len(state.times[f]) for f in bad}
    rc, s = _synth(inp, out, endpoint, "--max-retries", "0")
    assert rc == 1 and _balanced(s) and s["skipped"]["done"] == 3 and s["failed"] == 5
    assert all(len(state.times[f]) == asked[f] + 1 for f in bad)


def test_every_input_line_is_accounted_for(tmp_path, faults):
    endpoint, _ = faults
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": "a", "text": "하나"}\n{not json\n\n{"id": "b", "text": "  "}\n{"id": "c"}\n'
                   '{"id": "a", "text": "하나 again"}\n["a list"]\n{"id": "d", "text": "둘"}\n', encoding="utf-8")
    out = tmp_path / "o.jsonl"
    rc, s = _synth(inp, out, endpoint)
    assert rc == 0 and s["read"] == 8 and s["written"] == 2 and _balanced(s)
    assert s["skipped"] == {"malformed": 2, "empty": 3, "duplicate_id": 1, "done": 0}
    assert sorted(json.loads(line)["id"] for line in out.read_text().splitlines()) == ["a#rewrite", "d#rewrite"]


def test_killed_while_writing_a_record_then_resumed(tmp_path):
    """The kernel kills the writer mid-record (SIGXFSZ at a file-size limit inside record 5); the resume
    cuts the partial record off and ends with every document exactly once."""
    srv, _ = serve_faults(big_chars=100_000)
    endpoint = f"http://127.0.0.1:{srv.server_address[1]}/v1"
    try:
        inp = write_jsonl(tmp_path / "in.jsonl", _docs(["big"] * 8))
        cache = tmp_path / "cache.sqlite"
        common = ["--endpoint", endpoint, "--model", "m", "--max-tokens", "60000", "--concurrency", "1",
                  "--cache", str(cache)]
        assert main(["synth", str(inp), str(tmp_path / "warm.jsonl"), *common]) == 0  # fills the cache
        record = len((tmp_path / "warm.jsonl").read_bytes()) // 8
        out = tmp_path / "o.jsonl"
        limit = int(4.5 * record)  # half-way through the fifth record
        child = ("import resource, signal, sys; "
                 f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
                 "signal.signal(signal.SIGXFSZ, signal.SIG_DFL); "
                 "from data_prep.cli import main; sys.exit(main(sys.argv[1:]))")
        proc = subprocess.run([sys.executable, "-c", child, "synth", str(inp), str(out), *common], cwd=REPO,
                              capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(REPO),
                                                                                "PYTHONDONTWRITEBYTECODE": "1"})
        assert proc.returncode == -signal.SIGXFSZ, proc.stderr[-2000:]
        data = out.read_bytes()
        assert len(data) == limit and not data.endswith(b"\n")  # killed inside a record
        assert main(["synth", str(inp), str(out), *common]) == 0
        s = json.loads(Path(f"{out}.summary.json").read_text())
        assert s["skipped"]["done"] == 4 and s["written"] == 4 and s["repaired_bytes"] == limit - 4 * record
        rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert sorted(r["source_id"] for r in rows) == [f"d{i}" for i in range(8)]
    finally:
        srv.shutdown()
        srv.server_close()


def test_a_damaged_line_before_the_end_is_refused(tmp_path, faults, capsys):
    endpoint, _ = faults
    out = tmp_path / "o.jsonl"
    out.write_text('{"source_id": "d0", "text": "x"}\n{garbage\n{"source_id": "d1", "text": "y"}\n')
    rc = main(["synth", str(write_jsonl(tmp_path / "in.jsonl", _docs(["ok"]))), str(out), "--endpoint", endpoint,
               "--model", "m"])
    assert rc == 2 and "line 2 is not a synth record" in capsys.readouterr().err
