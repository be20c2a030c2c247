"""The demo report rendered from a small synthetic demo folder (summaries as the stages write them):
claims with numbers, the baselines, evaluation against chance, HTML structure, the Run section."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from midm.demo_report import write_report_for
from tests.conftest import REPO
from tokenizer.decode import decode_bytes, pieces_to_bytes


def _curve(run: str, start: float, end: float, steps: int = 12, per_step: int | None = 1024) -> dict:
    val = [(s, start + (end - start) * s / steps) for s in (4, 8, 12)]
    out = {"run": run, "steps": steps, "final_loss": end + 0.05, "final_val_loss": val[-1][1], "val_curve": val,
           "loss_curve": [(s, start + 0.05 + (end - start) * s / steps) for s in range(1, steps + 1)]}
    return {**out, "tokens_per_step": per_step} if per_step else out


def _bench(score: float, predicted: dict, gold: dict) -> dict:
    return {"title": "KLUE-NLI (mc)", "score": score, "n_samples": sum(gold.values()), "chance": 33.3333,
            "answers": {"choices": list(gold), "predicted": predicted, "gold": gold}}


def _demo_folder(out: Path) -> None:
    s = out / "summaries"
    s.mkdir(parents=True)
    gold = {"참": 40, "알 수 없음": 30, "거짓": 30}
    summaries = {
        "filter": {"stats": {"records_read": 1500, "kept": 1200, "dropped_total": 300, "balanced": True,
                             "problems": [], "dropped": {"quality": {"too_short": 250}, "dedup": {"exact_dup": 50}}}},
        "tokenizer": {"meta": {"vocab_size": 4088, "padded_vocab_size": 4096}, "heldout_docs": 600,
                      "eval": {"rows": [{"tokenizer": "demo", "vocab_size": 4088, "text": "korean", "docs": 300,
                                         "tokens_per_char": 0.61234, "tokens_per_word": 2.1, "bytes_per_token": 3.9,
                                         "byte_fallback_rate": 0.0012, "roundtrip_exact": 1.0}]}},
        "pretrain": _curve("parent", 7.0, 5.0, steps=40),
        "continued": {"dus": _curve("deep_dus", 5.3, 4.8), "scratch": _curve("deep_scratch", 7.5, 6.9),
                      "parent_continued": _curve("parent_continued", 5.0, 4.9)},
        "distill": {"distill": _curve("mini_distill", 6.0, 5.2), "pruned_lm": _curve("mini_pruned_lm", 6.0, 5.1),
                    "scratch": _curve("mini_scratch", 7.5, 7.0)},
        "generate": {"generations": {"mini": [{"prompt": "오늘 날씨가", "continuation": "맑 ⟨ec 9d⟩고", "dangling_bytes": 2,
                                               "invalid_bytes": 2}]}},
        "sft": {"data": {"conversations_read": 100, "kept": 98, "truncated": 1, "dropped_total": 2,
                         "dropped": {"empty_turn": 2}, "balanced": True, "seq_length": 256,
                         "splits": {"train": {"samples": 40, "fill": 0.93}}},
                "mini": {"run": _curve("mini_sft", 4.0, 3.0, per_step=None)}},
        "chat": {"heldout_conversations": 20,
                 "mini": {v: {"heldout_assistant_loss": x, "share_ending_with_eot": e,
                              "generations": [{"prompt": "안녕?", "reply": r}]}
                          for v, x, e, r in (("before", 6.0, 0.0, "그 그 그"), ("after", 3.5, 0.5, "안녕하세요!"))}},
        "eval": {"results": {"mini": {"benchmarks": {"klue_nli_mc": _bench(40.0, {"참": 100, "알 수 없음": 0,
                                                                                 "거짓": 0}, gold)}}}},
        "run": {"machine": {"logical_cores": 2, "usable_cores": 2, "torch_threads": 2, "OMP_NUM_THREADS": None,
                            "platform": "Linux"},
                "versions": {"python": "3.12.3", "torch": "2.13.0", "megatron-core": "0.19.0"},
                "commit": "abc1234", "command": "midm demo --steps 40"},
        "timings": {"filter": 20.5, "pretrain": 130.0, "continued": 95.25},
    }
    for name, data in summaries.items():
        (s / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo_out")
    _demo_folder(out)
    result = write_report_for(out)
    assert len(result["claims"]) == 6  # 2 DuS, 2 distillation, 1 SFT (one model), 1 evaluation
    return out


def test_report_claims_baselines_and_evaluation(report):
    md = (report / "report.md").read_text()
    # DuS (4.80) vs the parent trained on for the same tokens (4.90) and vs scratch (6.90): both held.
    assert "**Held** — DuS beats simply training the parent longer" in md and "4.800 for the DuS model vs 4.900" in md
    # Distillation (5.20) vs prune + LM (5.10): did not hold, said so with the numbers; the teacher's level is named.
    assert "**Did not hold** — distilling from the teacher beats the LM loss alone" in md
    assert "Gap to the teacher: the distilled Mini ends at 5.200, the teacher at 4.800 (+0.400)" in md
    assert "| parent trained on (no DuS) | 12 | 12 k |" in md  # 12 steps × 1,024 tokens
    # Evaluation: at chance (40 % on 100 examples is within 2 s.e. of 33.3), always the same answer, gold shares.
    assert "at chance; answers “참” every time" in md and "참 100 % · 알 수 없음 0 % · 거짓 0 %" in md
    assert "참 40 % · 알 수 없음 30 % · 거짓 30 %" in md
    # Run section: per-stage wall time, total, machine, versions, command.
    assert "| continued | 1 min 35 s | 39 % |" in md and "**4 min 06 s**" in md
    assert "torch uses 2 intra-op threads" in md and "| megatron-core | 0.19.0 |" in md and "midm demo --steps 40" in md
    # Values for people, not Python reprs.
    assert "4,088** pieces, padded to 4,096" in md and "dropped 2 (empty turn 2)" in md
    for raw in ("{'", "True", "False", "None", "\ufffd"):
        assert raw not in md, raw


def test_report_html_structure(report):
    page = (report / "report.html").read_text()
    assert "[^" not in page and 'class="footnote-ref"' in page  # footnotes rendered, not raw Markdown
    assert page.count("<table>") == page.count('<div class="table-scroll"><table>') > 5  # every table scrolls
    assert "<details>" in page and "Qwen3-4B" in page.split("<details>")[1]  # the card: collapsed appendix
    assert "Qwen3-4B" not in page.split("<details>")[0]
    assert '<h2 id="run">Run</h2>' in page and "<code>&lt;|eot_id|&gt;</code>" in page
    for raw in ("{'", "True", "None", "**", "\ufffd"):
        assert raw not in page, raw
    for png in ("parent_loss.png", "dus_vs_scratch.png", "distill_vs_scratch.png"):
        assert (report / png).stat().st_size > 10_000 and f'src="{png}"' in page


def test_incomplete_utf8_is_dropped_and_invalid_bytes_shown_in_hex():
    han = "한".encode()  # 3 bytes
    pieces = ["▁오늘", *[f"<0x{b:02X}>" for b in han], "<0xEC>", "<0x9D>", "▁날", "<|eot_id|>", *[f"<0x{b:02X}>" for b in han[:2]]]
    data = pieces_to_bytes(pieces, skip=frozenset({"<|eot_id|>"}))
    decoded = decode_bytes(data)
    assert decoded.text == " 오늘한⟨ec 9d⟩ 날" and decoded.dangling_bytes == 2 and decoded.invalid_bytes == 2


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="headless Chromium not installed (Debian: apt-get install chromium)")
def test_report_fits_its_column_in_a_browser(report, tmp_path):
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "report_screenshot.py"), str(report / "report.html"),
                           "--png", str(tmp_path / "report.png")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["overflowing"] == [] and result["page_width"] <= result["viewport_width"], result
    assert result["column_width"] <= 960 and result["tables"] == result["tables_in_scroll_box"] > 5, result
    assert (tmp_path / "report.png").stat().st_size > 10_000
