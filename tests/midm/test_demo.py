"""A reduced `midm demo`: every stage of the lineage through the real CLI, on a small slice of the
bundled sample with very few training steps (the full demo is `make demo`)."""
from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

SAMPLE = REPO / "demo_data" / "web_sample.jsonl.gz"


def _demo(out: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "midm", "demo", "--out", str(out), "--data", str(data), "--steps", "12",
            "--continue-steps", "6", "--vocab-size", "1024", "--eval-limit", "12", "--sft-epochs", "0.05",
            "--chat-prompts", "3", *extra]
    return subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "2"})


@pytest.mark.slow
def test_reduced_demo_runs_every_stage(tmp_path):
    data = tmp_path / "slice.jsonl.gz"
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as src, gzip.open(data, "wt", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i == 1500:
                break
            dst.write(line)
    out = tmp_path / "demo_out"
    proc = _demo(out, data)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    summaries = out / "summaries"
    for stage in ("filter", "tokenizer", "tokenize", "pretrain", "dus", "continued", "prune", "distill", "sft",
                  "convert", "generate", "chat", "eval", "report"):
        assert (summaries / f"{stage}.json").exists(), stage
    stats = json.loads((summaries / "filter.json").read_text())["stats"]
    assert stats["records_read"] == 1500 and stats["kept"] + stats["dropped_total"] == 1500
    report = (out / "report.md").read_text()
    for heading in ("Data filtering", "Tokenizer", "Depth-up scaling", "Pruning + logit distillation",
                    "Generations", "Supervised fine-tuning", "Evaluation", "Mini-inst"):
        assert heading in report
    sft = json.loads((summaries / "sft.json").read_text())["data"]
    assert sft["balanced"] and sft["conversations_read"] == sft["kept"] + sft["dropped_total"]
    chat = json.loads((summaries / "chat.json").read_text())
    for model in ("mini", "base"):
        assert chat[model]["after"]["assistant_tokens"] > 1000
    hf_tok = json.loads((out / "hf" / "mini_sft" / "generation_config.json").read_text())
    assert len(hf_tok["eos_token_id"]) == 2  # <|end_of_text|> and <|eot_id|>
    for png in ("parent_loss.png", "dus_vs_scratch.png", "distill_vs_scratch.png"):
        assert (out / png).stat().st_size > 1000
    assert '<div class="table-scroll"><table>' in (out / "report.html").read_text()
    # The parent trained on for the DuS model's tokens is the DuS baseline; every score comes with its chance level.
    continued = json.loads((summaries / "continued.json").read_text())
    assert continued["parent_continued"]["steps"] == continued["dus"]["steps"] == 6
    evaluated = json.loads((summaries / "eval.json").read_text())["results"]["mini"]["benchmarks"]["klue_nli_mc"]
    assert evaluated["chance"] == pytest.approx(100 / 3, abs=0.01) and sum(evaluated["answers"]["predicted"].values()) == 12
    assert "parent trained on" in report and "## Run" in report and "\ufffd" not in report
    assert (out / "hf" / "mini" / "config.json").exists()

    # Re-running reuses finished stages; --stages picks a subset.
    again = _demo(out, data, "--stages", "pretrain,report")
    assert again.returncode == 0 and "finished earlier — reusing" in again.stdout


def test_unknown_stage_is_rejected(tmp_path):
    proc = _demo(tmp_path, SAMPLE, "--stages", "filter,bake")
    assert proc.returncode == 2 and "unknown stage" in proc.stderr
