"""Malformed input is counted by reason, never crashes the run, and never loses the rest of a file."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

from data_prep.cli import main
from tests.data_prep.conftest import read_output, write_jsonl

GOOD = "오늘은 날씨가 좋아서 공원에 산책을 나갔습니다. 사람들이 많았고 아이들이 뛰어놀고 있었습니다."


def test_malformed_records_are_counted_and_the_rest_survives(tmp_path: Path, capsys, monkeypatch):
    inp = tmp_path / "in"
    inp.mkdir()
    lines = [
        json.dumps({"id": "a1", "text": GOOD, "source": "web", "extra": {"k": [1, 2]}}, ensure_ascii=False).encode(),
        b'{"id": "bad-json", "text": "unterminated',
        json.dumps({"id": "a2", "text": GOOD + " 둘째"}, ensure_ascii=False).encode(),
        b'{"id": "bad-utf8", "text": "\xff\xfe broken bytes"}',
        json.dumps({"id": "empty", "text": "   "}).encode(),
        json.dumps({"id": "no-text", "body": GOOD}, ensure_ascii=False).encode(),
        json.dumps({"id": "huge", "text": "가" * 5_000_000}, ensure_ascii=False).encode(),
        json.dumps({"id": "a3", "text": GOOD + " 셋째", "url": "https://example.kr/x"}, ensure_ascii=False).encode(),
    ]
    (inp / "part1.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    # a truncated .gz: the first records are readable, the stream then ends without its trailer
    full = gzip.compress("".join(json.dumps({"id": f"gz{i}", "text": f"{GOOD} {i}번째 문서"}, ensure_ascii=False) + "\n"
                                 for i in range(200)).encode())
    (inp / "part2.jsonl.gz").write_bytes(full[: len(full) // 2])
    write_jsonl(inp / "part3.jsonl.gz", [{"id": "z1", "text": GOOD + " 마지막"}], gz=True)

    out = tmp_path / "out"
    monkeypatch.setenv("MIDM_PROGRESS", "1")  # bars although stderr is no terminal here
    rc = main(["filter", str(inp), str(out), "--stages", "normalize", "--tasks", "2", "--fresh", "--keep-rejects"])
    assert rc == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["balanced"], stats["problems"]
    dropped = stats["dropped"]["input"]
    assert dropped == {"bad_json": 1, "invalid_utf8": 1, "empty": 1, "missing_text": 1, "too_large": 1}
    assert stats["stages"]["input"]["stats"]["truncated_gzip"] == 1
    rows = {r["id"]: r for r in read_output(out)}
    # everything after each bad line survived, and the readable part of the truncated gzip too
    assert {"a1", "a2", "a3", "z1"} <= set(rows)
    gz_ids = [k for k in rows if k.startswith("gz")]
    assert 0 < len(gz_ids) < 200
    assert stats["records_read"] == stats["kept"] + stats["dropped_total"] == len(rows) + 5
    # --keep-rejects writes the input stage's rejects too: one record per unreadable line, with its reason
    rejected = [json.loads(line) for f in sorted((out / "rejects" / "input").glob("*.jsonl.gz"))
                for line in gzip.open(f, "rt", encoding="utf-8")]
    assert sorted(r["_midm_reject"]["reason"] for r in rejected) == sorted(dropped)
    by_reason = {r["_midm_reject"]["reason"]: r for r in rejected}
    assert by_reason["bad_json"]["raw"] == '{"id": "bad-json", "text": "unterminated'
    assert by_reason["bad_json"]["line"] == 2 and by_reason["bad_json"]["file"] == str((inp / "part1.jsonl").resolve())
    assert "\\xff" in by_reason["invalid_utf8"]["raw"] and by_reason["too_large"]["raw"] is None
    # datatrove's per-step statistics went to OUT/filter.log, not to the terminal
    log = (out / "filter.log").read_text(encoding="utf-8")
    assert "📉📉📉 Stats: All 2 tasks" in log, log[-2000:]
    err = capsys.readouterr().err
    assert "📉📉📉 Stats" not in err and "0_stream: 100%" in err and "docs/s" in err, err
    # id and all other fields travel untouched
    assert rows["a1"]["source"] == "web" and rows["a1"]["extra"] == {"k": [1, 2]}
    assert rows["a3"]["url"] == "https://example.kr/x"
