"""One damaged record, at any layer, never ends a data command — the filter, tokenize and the
tokenizer's training all read the same damaged input, keep what is readable and count the rest.

Layers: a gzip member that does not inflate (``invalid block type``, the error that used to abort
``midm data tokenize``), bytes that are not UTF-8, JSON that does not parse or nests too deep, an
escaped lone surrogate inside valid JSON, a line far over the size limit; then texts that are
valid but strange for every filter stage. A stage that raises on one document drops it as
``stage_error``; a stage that raises on everything stops the run.
"""
from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest
from datatrove.data import Document

from data_prep.cli import main
from data_prep.docio.records import iter_lines, parse_record
from tests.data_prep.conftest import SAMPLES, read_output

GOOD = "오늘은 날씨가 좋아서 공원에 산책을 나갔습니다. 사람들이 많았고 아이들이 뛰어놀고 있었습니다."
RECORDS = [json.loads(line) for line in (SAMPLES / "sample_mixed.jsonl").read_text(encoding="utf-8").splitlines()]


def _member(records: list[dict]) -> bytes:
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    return gzip.compress(text.encode("utf-8"), mtime=0)


def damaged_gzip(path: Path) -> Path:
    """Three gzip members (``cat a.gz b.gz c.gz``) of 50 sample records each; the middle one's first
    deflate block has the reserved block type 3, so zlib fails on it with ``invalid block type``."""
    middle = bytearray(_member(RECORDS[50:100]))
    middle[10] = 0x07  # BFINAL=1, BTYPE=11 (reserved) right after the 10-byte gzip header
    path.write_bytes(_member(RECORDS[:50]) + bytes(middle) + _member(RECORDS[100:150]))
    return path


HOSTILE_LINES = [
    b'{"id": "bad-utf8", "text": "\xff\xfe broken"}',
    b'{"id": "bad-json", "text": "unterminated',
    b'[' * 100_000,  # deeper than any JSON parser's recursion limit
    b'{"id": "surrogate", "text": "lone \\ud800 surrogate"}',
    json.dumps({"id": "huge", "text": "가" * 3_000_000}, ensure_ascii=False).encode(),
    b'{"id": "number-text", "text": 42}',
]
STRANGE_TEXTS = {  # valid records every stage must take without raising
    "nul": "널 문자\x00가 섞인 문서입니다. " + GOOD,
    "emoji": "😀" * 500,
    "zero-width": "\u200b\u200c\u200d\ufeff" * 300,
    "long-word": "가" * 5_000,
    "controls": "".join(chr(c) for c in range(1, 32)) * 50 + GOOD,
    "combining": "e\u0301\u0302\u0303" * 1000,
    "rtl": "مرحبا بالعالم " * 100,
    "pii-like": "주민번호 900101-1234567 전화 010-1234-5678 " * 50,
}


@pytest.fixture(scope="module")
def damaged_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("damaged")
    damaged_gzip(d / "a.jsonl.gz")
    lines = HOSTILE_LINES + [json.dumps({"id": k, "text": v}, ensure_ascii=False).encode()
                             for k, v in STRANGE_TEXTS.items()]
    lines.append(json.dumps({"id": "last", "text": GOOD + " 마지막"}, ensure_ascii=False).encode())
    (d / "b.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return d


def test_reader_skips_the_damaged_member_and_keeps_the_next(damaged_dir):
    stats: Counter = Counter()
    with open(damaged_dir / "a.jsonl.gz", "rb") as fh:
        ids = [parse_record(line)[0]["id"] for line in iter_lines(fh, gzip=True, stats=stats) if line]
    assert ids == [r["id"] for r in RECORDS[:50] + RECORDS[100:150]]
    assert stats["damaged_gzip_member"] == 1 and stats["truncated_gzip"] == 0
    with pytest.raises(Exception, match="invalid block type"):  # what every plain gzip reader does
        gzip.decompress((damaged_dir / "a.jsonl.gz").read_bytes())


def test_parse_record_names_every_reason():
    reasons = [parse_record(line)[1] for line in HOSTILE_LINES if len(line) < 1_000_000]
    assert reasons == ["invalid_utf8", "bad_json", "bad_json", "invalid_unicode", "missing_text"]


def test_filter_keeps_every_readable_record(damaged_dir, tmp_path):
    out = tmp_path / "out"
    assert main(["filter", str(damaged_dir), str(out), "--stages", "normalize,langid", "--tasks", "1"]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["balanced"], stats["problems"]
    assert stats["dropped"]["input"] == {"bad_json": 2, "invalid_unicode": 1, "invalid_utf8": 1,
                                         "missing_text": 1, "too_large": 1}
    assert stats["stages"]["input"]["stats"]["damaged_gzip_member"] == 1
    assert stats["records_read"] == 100 + len(HOSTILE_LINES) + len(STRANGE_TEXTS) + 1
    assert not any("stage_error" in d for d in stats["dropped"].values()), stats["dropped"]
    kept = {r["id"] for r in read_output(out)}
    assert len(kept) == stats["kept"] > 0 and not kept & {r["id"] for r in RECORDS[50:100]}


def test_no_stage_raises_on_strange_texts(tmp_path):
    """Every stage's rule on texts that are valid but strange (most would never reach the later
    stages through the pipeline, so each stage gets all of them here)."""
    from data_prep.config import load_config
    from data_prep.pipeline import _stage_steps, RunPaths

    cfg = load_config(None)
    cfg["url"]["use_datatrove_lists"] = False  # 4.5 M UT1 domains: slow to load, irrelevant to the texts
    steps = _stage_steps(["url", "normalize", "langid", "heuristics", "toxicity", "pii", "quality"], cfg,
                         RunPaths(tmp_path), keep_rejects=False)
    for step in steps:
        step.setup()
        for key, text in STRANGE_TEXTS.items():
            doc = Document(text=text, id=key, metadata={"url": "http://\x00\u200b.kr/" + text[:50]})
            result = step.process(doc)
            assert result is None or isinstance(result, str), (step.stage, key)


def test_tokenize_keeps_every_readable_record(damaged_dir, tmp_path):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    from tests.data_prep.test_tokenize import train_test_tokenizer

    tok = train_test_tokenizer(tmp_path / "tok")
    prefix = tmp_path / "tokens" / "x"
    assert main(["tokenize", str(damaged_dir), str(prefix), "--tokenizer", str(tok)]) == 0  # default flags
    summary = json.loads(Path(f"{prefix}.summary.json").read_text())
    assert summary["damaged_gzip_members"] == 1
    assert summary["skipped"] == {"bad_json": 2, "invalid_unicode": 1, "invalid_utf8": 1, "missing_text": 1}
    assert summary["documents"] == len(IndexedDataset(str(prefix))) == 100 + len(STRANGE_TEXTS) + 2  # + huge, last
    assert not list(prefix.parent.rglob("*.tmp"))


def test_tokenizer_training_keeps_every_readable_record(damaged_dir, tmp_path):
    from tokenizer.cli import main as tokenizer_main

    assert tokenizer_main(["train", "--input", str(damaged_dir), "--vocab-size", "1024",
                           "--output", str(tmp_path / "tok")]) == 0
    summary = json.loads((tmp_path / "tok" / "train_summary.json").read_text())
    assert summary["corpus"]["skipped"] == {"bad_json": 2, "damaged_gzip_member": 1, "invalid_unicode": 1,
                                            "invalid_utf8": 1, "missing_text": 1}


def test_a_stage_that_raises_on_one_document_drops_it(tmp_path):
    """The base class's contract, with a stage whose rule fails on one document."""
    from data_prep.errors import DataError
    from data_prep.filters.base import MidmStage

    class Fragile(MidmStage):
        stage = "fragile"

        def process(self, doc):
            if "boom" in doc.text:
                raise ValueError("cannot read this one")
            return None

    docs = [Document(text=t, id=str(i)) for i, t in enumerate(["a", "boom", "b"])]
    stage = Fragile(str(tmp_path), {})
    assert [d.id for d in stage.run(iter(docs))] == ["0", "2"]
    counts = json.loads((tmp_path / "fragile" / "00000.json").read_text())
    assert counts["dropped:stage_error"] == 1 and counts["error:ValueError"] == 1 and counts["in"] == 3
    broken = Fragile(str(tmp_path), {})
    with pytest.raises(DataError, match="broken stage or configuration"):
        list(broken.run(iter(Document(text="boom", id=str(i)) for i in range(30))))
