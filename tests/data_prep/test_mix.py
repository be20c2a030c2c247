"""`midm data mix`: normalised weights, absolute prefixes, token accounting, epoch guard."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_prep.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "data_prep" / "configs" / "mix_example.yaml"


def test_example_curriculum(tmp_path, capsys):
    assert main(["mix", str(EXAMPLE), str(tmp_path)]) == 0
    index = json.loads((tmp_path / "curriculum.json").read_text())
    assert [p["name"] for p in index["phases"]] == ["stage1_broad", "stage2_korean_quality", "stage3_anneal"]
    assert index["total_tokens"] == int(6.0e12 + 2.5e12 + 5.0e11)
    phase = json.loads(Path(index["phases"][0]["file"]).read_text())
    assert abs(sum(w for w, _ in phase["blend"]) - 1.0) < 1e-9
    assert all(Path(p).is_absolute() for _, p in phase["blend"])
    # a source over two prefixes shares its weight between them
    curated = [w for w, p in phase["blend"] if p.endswith(("ko_statutes", "ko_news"))]
    assert len(curated) == 2 and abs(sum(curated) - 0.03) < 1e-9
    assert phase["sources"]["ko_web"]["tokens"] == int(0.30 * 6.0e12)
    words = phase["data_path"].split()
    assert len(words) == 2 * len(phase["blend"]) and float(words[0]) == pytest.approx(phase["blend"][0][0])
    assert phase["data_path"] in capsys.readouterr().out


def test_tokenized_sources_and_epoch_guard(tmp_path, capsys):
    tok = tmp_path / "ko"
    Path(f"{tok}.summary.json").write_text(json.dumps({"output_prefix": str(tok), "tokens": 1000,
                                                       "tokenizer": "tok_a", "tokenizer_fingerprint": "a" * 16}))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"sources:\n  ko: {{tokenized: {tok}}}\n  en: {{prefix: en, tokens: 5000}}\n"
                   "phases:\n  - {name: p1, tokens: 2000, weights: {ko: 1, en: 3}}\n")
    assert main(["mix", str(cfg), str(tmp_path / "o")]) == 0
    phase = json.loads((tmp_path / "o" / "00_p1.json").read_text())
    assert phase["blend"] == [[0.25, str(tok)], [0.75, str(tmp_path / "en")]]
    assert phase["sources"]["ko"]["epochs"] == 0.5
    cfg.write_text(f"max_epochs: 1\nsources:\n  ko: {{tokenized: {tok}}}\n"
                   "phases:\n  - {name: p1, tokens: 5000, weights: {ko: 1}}\n")
    assert main(["mix", str(cfg), str(tmp_path / "o2")]) == 2  # a usage error: exit 2, one line
    assert "5.00 times" in capsys.readouterr().err
    # a source tokenized with another tokenizer (in any phase): refused before anything is written
    other = tmp_path / "en_b"
    Path(f"{other}.summary.json").write_text(json.dumps({"output_prefix": str(other), "tokens": 9000,
                                                         "tokenizer": "tok_b", "tokenizer_fingerprint": "b" * 16}))
    cfg.write_text(f"sources:\n  ko: {{tokenized: {tok}}}\n  en: {{tokenized: {other}}}\n"
                   "phases:\n  - {name: p1, tokens: 500, weights: {ko: 1}}\n"
                   "  - {name: p2, tokens: 500, weights: {en: 1}}\n")
    assert main(["mix", str(cfg), str(tmp_path / "o3")]) == 2
    assert capsys.readouterr().err == (
        f"midm data mix: error: {cfg} mixes tokenizers: {tok} was tokenized with tokenizer tok_a "
        f"(fingerprint {'a' * 16}), {other} with tokenizer tok_b (fingerprint {'b' * 16}); a model trains on one "
        "tokenizer's ids: re-run `midm data tokenize` on one of them with the other's --tokenizer\n")
    assert not (tmp_path / "o3").exists()
