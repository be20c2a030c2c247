"""`midm eval table`: the model card's three tables with our rows beside the published ones."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

from evaluation import cli, registry, runner, tables


def test_layout_matches_the_published_header():
    published = tables.load_published()
    for spec in tables.TABLES:
        assert [c.title for c in spec.columns] == published[spec.key]["header_rows"][1]
        assert [g for g, _ in spec.groups] == published[spec.key]["header_rows"][0][1:]
        assert sum(n for _, n in spec.groups) == len(spec.columns)
        for col in spec.columns:
            assert col.bench is None or col.bench in registry.BENCHMARKS


def test_avg_columns_reproduce_the_published_averages():
    """Our reading of each "Avg." reproduces the card's numbers (one published typo aside)."""
    published = tables.load_published()
    off = []
    for spec in tables.TABLES:
        for model, row in published[spec.key]["rows"].items():
            for i, col in enumerate(spec.columns):
                if col.avg_of:
                    vals = [float(row[j]) for j in col.avg_of if row[j] != "-"]
                    if abs(sum(vals) / len(vals) - float(row[i])) > 0.051:
                        off.append((spec.key, model, col.title))
    assert off == [("korean_part1", "Exaone-3.5-2.4B-inst", "Avg.")]  # card: 68.9, its columns give 69.7


def _summary(path: Path, scores: dict[str, float], name: str) -> Path:
    path.write_text(json.dumps({"schema": runner.SUMMARY_SCHEMA, "model_name": name,
                                "benchmarks": {k: {"score": v} for k, v in scores.items()}}))
    return path


def test_our_row_cells():
    spec = tables.TABLES[0]
    cells = tables.our_cells(spec, {"haerae": 61.25, "kmmlu": 40.0})
    assert cells[:3] == ["n/r", "n/r", "n/r"] and cells[3] == "61.2"
    assert cells[4] == "61.2†"          # average over HAERAE only: the proprietary columns are n/r
    assert cells[5:8] == ["40.0", "n/r", "40.0†"]
    assert cells[8:] == ["–", "–", "–"]
    english = tables.our_cells(tables.TABLES[2], {"bbh": 30.0, "gpqa": 20.0, "musr": 40.0})
    assert english[4] == "30.0"          # complete average: no mark


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])

    def handle_data(self, data):
        if self.rows and self.lasttag in ("td", "th") and data.strip():
            self.rows[-1].append(data.strip())


def test_cli_writes_markdown_and_html(tmp_path, capsys):
    a = _summary(tmp_path / "a.json", {"haerae": 55.0, "kmmlu": 41.0, "klue_nli_mc": 50.0}, "step100")
    b = _summary(tmp_path / "b.json", {"gsm8k": 12.5}, "step200")
    assert cli.main(["table", str(a), str(b), "--label", "Mini-repro", "--label", "Base-repro",
                     "--output", str(tmp_path / "card")]) == 0
    md = (tmp_path / "card.md").read_text()
    assert "| **Mini-repro (ours)** | n/r | n/r | n/r | 55.0 | 55.0† | 41.0 |" in md
    assert "| Mi:dm 2.0-Mini-inst | 66.4 | 61.4 | 36.7 | 70.8 |" in md
    assert "Other benchmarks" in md and "klue_nli_mc" in md
    parser = _Cells()
    parser.feed((tmp_path / "card.html").read_text())
    base_rows = [r for r in parser.rows if r and r[0] == "Base-repro (ours)"]
    assert len(base_rows) == 4  # three card tables + "other benchmarks"
    assert base_rows[2] == ["Base-repro (ours)"] + ["–"] * 5 + ["12.5"] + ["–"] * 4  # English: GSM8K column
    assert parser.rows[1][:4] == ["K-Refer*", "K-Refer-Hard*", "Ko-Sovereign*", "HAERAE"]
    assert cli.main(["table", str(a)]) == 0 and "step100 (ours)" in capsys.readouterr().out


def test_table_skips_lm_eval_raw_companions(tmp_path, capsys):
    a = _summary(tmp_path / "a.json", {"kmmlu": 41.0}, "m")
    (tmp_path / "a.lm_eval.json").write_text('{"results": {}}')  # what `results/*.json` also matches
    assert cli.main(["table", str(a), str(tmp_path / "a.lm_eval.json")]) == 0
    assert capsys.readouterr().out.count("m (ours)") == 3


def test_table_rejects_foreign_json(tmp_path, capsys):
    bad = tmp_path / "x.json"
    bad.write_text('{"results": {}}')
    assert cli.main(["table", str(bad)]) == 2
    assert "not a `midm eval` summary" in capsys.readouterr().err
