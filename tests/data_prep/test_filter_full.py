"""All eight stages with the shipped default config on a real mixed sample (one run, many checks)."""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from data_prep.cli import main
from data_prep.pii.types import PII_TOKENS
from tests.data_prep.conftest import read_output


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, sample_mixed):
    out = tmp_path_factory.mktemp("full") / "out"
    rc = main(["filter", str(sample_mixed), str(out), "--keep-rejects", "--tasks", "2", "--fresh"])
    assert rc == 0
    return out, json.loads((out / "stats.json").read_text())


def _rejects(out: Path) -> dict[str, dict]:
    rows = {}
    for f in (out / "rejects").rglob("*.jsonl.gz"):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                r = json.loads(line)
                rows[r["id"]] = r["_midm_reject"]
    return rows


def test_every_document_is_accounted_for(full_run):
    out, stats = full_run
    assert stats["balanced"], stats["problems"]
    assert stats["records_read"] == 152
    assert stats["records_read"] == stats["kept"] + stats["dropped_total"]
    assert len(read_output(out)) == stats["kept"]
    for stage in ("url", "normalize", "langid", "heuristics", "dedup.exact", "dedup.minhash", "toxicity", "pii",
                  "quality.score", "quality.cut"):
        s = stats["stages"][stage]
        assert s["in"] == s["out"] + sum(s["dropped"].values())
    # stages are chained: what one stage passes on, the next one receives
    order = ["input", "url", "normalize", "langid", "heuristics", "dedup.exact", "dedup.minhash", "toxicity", "pii",
             "quality.score", "quality.cut", "output"]
    for a, b in zip(order, order[1:]):
        assert stats["stages"][a]["out"] == stats["stages"][b]["in"], (a, b)


def test_rejects_carry_stage_and_reason(full_run, sample_mixed):
    out, stats = full_run
    records = [json.loads(line) for line in sample_mixed.read_text(encoding="utf-8").splitlines()]
    by_text = {}
    for r in records:
        by_text.setdefault(r["text"], []).append(r["id"])
    exact_pairs = [ids for ids in by_text.values() if len(ids) > 1]
    assert len(exact_pairs) == 2
    rejects = _rejects(out)
    assert len(rejects) == stats["dropped_total"]
    assert rejects["casino"] == {"stage": "url", "reason": "host_keyword"}
    assert rejects["adult-url"] == {"stage": "url", "reason": "ut1_domain"}  # datatrove's bundled UT1 list
    assert rejects["japanese"]["stage"] == "langid"
    dedup = {k: v for k, v in rejects.items() if v["stage"] == "dedup"}
    assert {v["reason"] for v in dedup.values()} <= {"exact_duplicate", "near_duplicate"}
    # of each exact-duplicate pair one is removed as a duplicate; the near-duplicate statute too
    for ids in exact_pairs:
        assert sum(rejects.get(i, {}).get("reason") == "exact_duplicate" for i in ids) == 1
    near = [r for r in records if r["id"] == "near-dup-statute"][0]["text"]
    original = [r["id"] for r in records if r["id"].startswith("statute-")
                and r["text"].replace("제1조", "제 1조", 1) + " 부칙." == near]
    assert len(original) == 1
    assert {rejects.get(i, {}).get("reason") for i in ["near-dup-statute", *original]} & {"near_duplicate"}
    assert stats["dropped"]["quality.cut"]["below_top_fraction"] >= 1


def _reject_records(out: Path) -> dict[str, dict]:
    rows = {}
    for f in (out / "rejects").rglob("*.jsonl.gz"):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            rows.update((r["id"], r) for r in map(json.loads, fh))
    return rows


def test_outputs_are_normalised_masked_and_annotated(full_run):
    out, _ = full_run
    rows = {r["id"]: r for r in read_output(out)}
    # the mojibake document is repaired by ftfy (stage 2) — whether a later stage keeps it or not,
    # the text it carries on is the repaired one (a reject record holds the text as its stage saw it)
    mojibake = rows.get("mojibake") or _reject_records(out)["mojibake"]
    assert "안녕하세요 반갑습니다" in mojibake["text"] and "ì•ˆ" not in mojibake["text"]
    assert mojibake.get("_midm_reject", {}).get("stage") != "normalize"
    masked = [r for r in rows.values() if r.get("source") == "ko_pii"]
    assert masked, "admin documents with PII should survive the filter"
    tokens = set(PII_TOKENS.values())
    assert all(any(t in r["text"] for t in tokens) for r in masked)
    assert all("010-" not in r["text"] and "@gmail.com" not in r["text"] for r in masked)
    for r in rows.values():
        assert r["_midm"]["lang"] in ("ko", "en")
        assert 0.0 <= r["_midm"]["quality"] <= 1.0


def test_gzip_levels(full_run):
    """Work shards are written at the fastest level, what the user keeps at level 3 (not fsspec's 9).

    The gzip header's XFL byte (RFC 1952) says 4 for level 1, 2 for level 9, 0 otherwise."""
    out, _ = full_run
    work = list((out / "_work").rglob("*.jsonl.gz"))
    kept = list(out.glob("*.jsonl.gz")) + list((out / "rejects").rglob("*.jsonl.gz"))
    assert work and kept
    assert {f.read_bytes()[8] for f in work} == {4}
    assert {f.read_bytes()[8] for f in kept} == {0}
