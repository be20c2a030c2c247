"""The Mi:dm 2.0 model card's three evaluation tables, with our results beside the published ones.

The published numbers ship in ``evaluation/paper/midm2_model_card_tables.json`` (values in the
order of the card's second header row). This module knows the card's layout — which columns
form each group, which registry benchmark feeds each column, which columns each "Avg." averages
(inferred from the published numbers and checked by the tests) — and renders markdown or HTML.

KT-proprietary benchmarks (K-Refer, K-Refer-Hard, K-Prag, Ko-Sovereign; ``*`` on the card) cannot
be reproduced outside KT: our rows show them as "n/r". An "Avg." over columns we could not
fill is the mean of the columns we have, marked with †.

Our rows are compared only when made alike: :func:`check_comparable` refuses two rows whose scores
for one column differ in their provenance signature (lm-eval and task versions, shots, backend,
dtype, chat template, seed, limits, judge — :func:`evaluation.provenance.signature`) unless
``allow_mixed``; then such cells are marked ≠ and the differences listed. Judge-scored columns
name their judge; a judge score with unparseable judgements is marked §; the footnotes say which
aggregation (micro/macro) each score uses.
"""
from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation import provenance
from midm.errors import MidmError

PAPER_TABLES = Path(__file__).resolve().parent / "paper" / "midm2_model_card_tables.json"
NOT_REPRODUCIBLE = "n/r"
MISSING = "–"


@dataclass(frozen=True)
class Column:
    title: str
    bench: str | None = None         # registry benchmark that fills this column for our rows
    avg_of: tuple[int, ...] = ()     # for "Avg." columns: indices of the averaged columns

    @property
    def proprietary(self) -> bool:
        return self.title.endswith("*")


@dataclass(frozen=True)
class TableSpec:
    key: str                         # key in the published JSON
    title: str
    groups: tuple[tuple[str, int], ...]  # (group title, number of columns it spans)
    columns: tuple[Column, ...]


C = Column
TABLES: tuple[TableSpec, ...] = (
    TableSpec("korean_part1", "Korean (1/2)",
              (("Society & Culture", 5), ("General Knowledge", 3), ("Instruction Following", 3)),
              (C("K-Refer*"), C("K-Refer-Hard*"), C("Ko-Sovereign*"), C("HAERAE", "haerae"),
               C("Avg.", avg_of=(0, 1, 2, 3)),
               C("KMMLU", "kmmlu"), C("Ko-Sovereign*"), C("Avg.", avg_of=(5, 6)),
               C("Ko-IFEval", "ko_ifeval"), C("Ko-MTBench", "ko_mtbench"), C("Avg.", avg_of=(8, 9)))),
    # The card places Ko-Winogrande after the Comprehension average, but its published
    # Comprehension "Avg." includes Ko-Winogrande and the Reasoning "Avg." does not.
    TableSpec("korean_part2", "Korean (2/2)", (("Comprehension", 5), ("Reasoning", 5)),
              (C("K-Prag*"), C("K-Refer-Hard*"), C("Ko-Best", "kobest_comprehension"), C("Ko-Sovereign*"),
               C("Avg.", avg_of=(0, 1, 2, 3, 5)),
               C("Ko-Winogrande", "ko_winogrande"), C("Ko-Best", "kobest_reasoning"), C("LogicKor", "logickor"),
               C("HRM8K", "hrm8k"), C("Avg.", avg_of=(6, 7, 8)))),
    TableSpec("english", "English",
              (("Instruction", 1), ("Reasoning", 4), ("Math", 1), ("Coding", 1), ("General Knowledge", 3)),
              (C("IFEval", "ifeval"), C("BBH", "bbh"), C("GPQA", "gpqa"), C("MuSR", "musr"),
               C("Avg.", avg_of=(1, 2, 3)), C("GSM8K", "gsm8k"), C("MBPP+", "mbpp_plus"),
               C("MMLU-pro", "mmlu_pro"), C("MMLU", "mmlu"), C("Avg.", avg_of=(7, 8)))),
)


class MixedSettings(MidmError):
    """Two rows of one column were scored with different settings (see --allow-mixed)."""


@dataclass
class OurRow:
    label: str
    scores: dict[str, float]                                   # benchmark -> score on the card's scale
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)  # benchmark -> signature, judge, …

    def __iter__(self):  # `label, scores = row`
        return iter((self.label, self.scores))


def load_published(path: Path = PAPER_TABLES) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _meta(run_prov: dict | None, bench: dict[str, Any]) -> dict[str, Any]:
    prov = bench.get("provenance")
    return {"signature": provenance.signature(run_prov, prov), "judge_model": bench.get("judge_model"),
            "n_unparseable": int(bench.get("n_unparseable") or 0), "aggregation": bench.get("aggregation"),
            "aggregation_source": (prov or {}).get("aggregation_source", "")}


def load_results(paths: list[Path], labels: list[str] | None = None) -> list[OurRow]:
    """One :class:`OurRow` per `midm eval` summary file (scores on the card's scale + provenance)."""
    from evaluation.runner import READABLE_SCHEMAS

    if labels and len(labels) != len(paths):
        raise ValueError(f"{len(labels)} --label values for {len(paths)} results files")
    rows = []
    companions = [p for p in paths if Path(p).name.endswith(".lm_eval.json")]
    if companions and labels:
        raise ValueError(f"{companions[0]} is lm-eval's raw output; pass only the summary files with --label")
    paths = [p for p in paths if p not in companions]  # `results/*.json` also matches the raw companions
    if not paths:
        raise ValueError("no `midm eval` summary files given (only lm-eval raw outputs)")
    for i, path in enumerate(paths):
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if data.get("schema") not in READABLE_SCHEMAS:
            raise ValueError(f"{path}: not a `midm eval` summary (schema {data.get('schema')!r}, "
                             f"expected one of {READABLE_SCHEMAS})")
        benches = data["benchmarks"]
        scores = {name: float(b["score"]) for name, b in benches.items() if b.get("score") is not None}
        meta = {name: _meta(data.get("provenance"), b) for name, b in benches.items()}
        rows.append(OurRow(labels[i] if labels else data.get("model_name") or Path(path).stem, scores, meta))
    return rows


def mixed_columns(ours: list[OurRow]) -> dict[str, list[str]]:
    """{benchmark: difference lines} for benchmarks whose rows disagree in their settings."""
    out: dict[str, list[str]] = {}
    for bench in sorted({b for row in ours for b in row.scores}):
        sigs = [(row.label, row.meta.get(bench, {}).get("signature", {})) for row in ours if bench in row.scores]
        first_label, first = sigs[0]
        lines = [f"{first_label} vs {label}: " + "; ".join(provenance.differences(first, sig))
                 for label, sig in sigs[1:] if sig != first]
        if lines:
            out[bench] = lines
    return out


def check_comparable(ours: list[OurRow], *, allow_mixed: bool = False) -> dict[str, list[str]]:
    """Raise :class:`MixedSettings` when a column's rows were scored differently (unless allowed);
    returns the mixed columns."""
    mixed = mixed_columns(ours)
    if mixed and not allow_mixed:
        detail = "\n".join(f"  {bench}: {line}" for bench, lines in mixed.items() for line in lines)
        raise MixedSettings("these rows were scored with different settings for the same column:\n" + detail
                            + "\nre-run them alike, or pass --allow-mixed to show them side by side (marked ≠)")
    return mixed


def our_cells(spec: TableSpec, scores: dict[str, float], meta: dict[str, dict] | None = None,
              mixed: dict[str, list[str]] | None = None) -> list[str]:
    meta, mixed = meta or {}, mixed or {}
    values: list[float | None] = [
        scores.get(c.bench) if c.bench and not c.avg_of and not c.proprietary else None for c in spec.columns]
    cells: list[str] = []
    for col, value in zip(spec.columns, values):
        if col.avg_of:  # may average columns to its right (see korean_part2), hence the two passes
            members = [values[i] for i in col.avg_of]
            have = [v for v in members if v is not None]
            mark = "" if len(have) == len(members) else "†"
            cells.append(f"{sum(have) / len(have):.1f}{mark}" if have else MISSING)
        elif col.proprietary:
            cells.append(NOT_REPRODUCIBLE)
        else:
            mark = ("§" if col.bench and meta.get(col.bench, {}).get("n_unparseable") else "") + \
                   ("≠" if col.bench in mixed else "")
            cells.append(MISSING if value is None else f"{value:.1f}{mark}")
    return cells


def table_rows(spec: TableSpec, published: dict, ours: list[OurRow], mixed: dict[str, list[str]] | None = None):
    """[(label, cells, is_ours)] — published models first, in the card's order."""
    rows = [(model, list(cells), False) for model, cells in published[spec.key]["rows"].items()]
    return rows + [(f"{row.label} (ours)", our_cells(spec, row.scores, row.meta, mixed), True) for row in ours]


def judges(ours: list[OurRow], bench: str) -> list[str]:
    return sorted({row.meta[bench]["judge_model"] for row in ours
                   if bench in row.meta and row.meta[bench].get("judge_model")})


def column_titles(spec: TableSpec, ours: list[OurRow]) -> list[str]:
    """The card's column titles; judge-scored columns name the judge(s) our rows used."""
    out = []
    for col in spec.columns:
        names = judges(ours, col.bench) if col.bench else []
        out.append(f"{col.title} [judge: {', '.join(names)}]" if names else col.title)
    return out


def footnotes(ours: list[OurRow], mixed: dict[str, list[str]]) -> list[str]:
    from evaluation.registry import BENCHMARKS

    notes = list(FOOTNOTES)
    shown = sorted({b for row in ours for b in row.scores})
    for bench in shown:
        aggs = {row.meta.get(bench, {}).get("aggregation") for row in ours if bench in row.scores} - {None}
        reg = BENCHMARKS.get(bench)
        if reg is not None and reg.aggregation_source and aggs:
            source = reg.aggregation_source
            notes.append(f"{reg.title} ({bench}): {' / '.join(sorted(aggs))} mean over its lm-eval tasks "
                         f"({source}); both micro and macro are in the results file.")
        names = judges(ours, bench)
        if names:
            notes.append(f"{bench}: scored by the LLM judge {', '.join(names)} with the benchmark's published "
                         "judge prompt.")
        bad = [(row.label, row.meta[bench]["n_unparseable"]) for row in ours
               if row.meta.get(bench, {}).get("n_unparseable")]
        if bad:
            notes.append(f"`§` {bench}: " + ", ".join(f"{label}: {n} unparseable judgements" for label, n in bad)
                         + " (left out of the mean, never scored).")
    for bench, lines in mixed.items():
        notes.append(f"`≠` {bench} rows were scored with different settings: " + " | ".join(lines))
    return notes


def _check_layout(spec: TableSpec, published: dict) -> None:
    header = published[spec.key]["header_rows"][1]
    if [c.title for c in spec.columns] != header:
        raise ValueError(f"{spec.key}: layout {[c.title for c in spec.columns]} != published header {header}")


def other_benchmarks(ours) -> list[str]:
    """Benchmarks in our results that no card column shows (e.g. the offline KLUE-NLI/KorNLI sets)."""
    on_card = {c.bench for spec in TABLES for c in spec.columns if c.bench}
    return sorted({b for _, scores in ours for b in scores} - on_card)


def _fmt(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1f}"


FOOTNOTES = (
    "`*` KT-proprietary benchmark: not reproducible outside KT (shown as n/r for our models).",
    "`–` not reported / not run. `†` average over the columns we have (n/r and missing columns left out).",
    "Published rows are the Mi:dm 2.0 model card's numbers as published; shots and metrics for our rows: "
    "`midm eval list`.",
)


def render_markdown(published: dict, ours: list[OurRow]) -> str:
    mixed = mixed_columns(ours)
    out = ["## Mi:dm 2.0 model card tables, with our results", ""]
    for spec in TABLES:
        _check_layout(spec, published)
        out.append(f"### {spec.title}: " + " · ".join(f"{g} ({n})" for g, n in spec.groups))
        out.append("")
        group_of = [g for g, n in spec.groups for _ in range(n)]
        titles = [f"{t} ({g})" if c.title == "Avg." else t
                  for c, t, g in zip(spec.columns, column_titles(spec, ours), group_of)]
        out.append("| Model | " + " | ".join(titles) + " |")
        out.append("|---|" + "---:|" * len(titles))
        for label, cells, is_ours in table_rows(spec, published, ours, mixed):
            name = f"**{label}**" if is_ours else label
            out.append(f"| {name} | " + " | ".join(cells) + " |")
        out.append("")
    extra = other_benchmarks(ours)
    if extra:
        out += ["### Other benchmarks (not on the model card)", ""]
        out.append("| Model | " + " | ".join(extra) + " |")
        out.append("|---|" + "---:|" * len(extra))
        for label, scores in ours:
            out.append(f"| **{label} (ours)** | " + " | ".join(_fmt(scores.get(b)) for b in extra) + " |")
        out.append("")
    out += [f"- {note}" for note in footnotes(ours, mixed)]
    return "\n".join(out) + "\n"


def render_html(published: dict, ours: list[OurRow]) -> str:
    mixed = mixed_columns(ours)
    e = html.escape
    out = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8"><title>Mi:dm 2.0 tables</title>',
           "<style>table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #999;padding:2px 6px}"
           "td{text-align:right}td:first-child{text-align:left}tr.ours{font-weight:bold;background:#eef}</style>",
           "</head><body>", "<h2>Mi:dm 2.0 model card tables, with our results</h2>"]
    for spec in TABLES:
        _check_layout(spec, published)
        out.append(f"<h3>{e(spec.title)}</h3>")
        out.append("<table>")
        out.append('<tr><th rowspan="2">Model</th>'
                   + "".join(f'<th colspan="{n}">{e(g)}</th>' for g, n in spec.groups) + "</tr>")
        out.append("<tr>" + "".join(f"<th>{e(t)}</th>" for t in column_titles(spec, ours)) + "</tr>")
        for label, cells, is_ours in table_rows(spec, published, ours, mixed):
            cls = ' class="ours"' if is_ours else ""
            out.append(f"<tr{cls}><td>{e(label)}</td>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
        out.append("</table>")
    extra = other_benchmarks(ours)
    if extra:
        out += ["<h3>Other benchmarks (not on the model card)</h3>", "<table>",
                "<tr><th>Model</th>" + "".join(f"<th>{e(b)}</th>" for b in extra) + "</tr>"]
        for label, scores in ours:
            out.append(f'<tr class="ours"><td>{e(label)} (ours)</td>'
                       + "".join(f"<td>{e(_fmt(scores.get(b)))}</td>" for b in extra) + "</tr>")
        out.append("</table>")
    out.append("<ul>" + "".join(f"<li>{e(n.replace('`', ''))}</li>" for n in footnotes(ours, mixed)) + "</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render(ours: list[OurRow], fmt: str = "md", published: dict | None = None) -> str:
    published = published or load_published()
    if fmt == "md":
        return render_markdown(published, ours)
    if fmt == "html":
        return render_html(published, ours)
    raise ValueError(f"unknown format {fmt!r} (md or html)")
