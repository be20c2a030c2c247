"""The demo report's evaluation and "Run" sections (Markdown lines), from the stages' summaries.

Evaluation: our scores next to the chance level and the distribution of the answers each model gave
(``answers`` and ``chance`` in a ``midm eval`` summary, ``evaluation/runner.py``), and, per card column
we ran, the published numbers beside ours; the full model-card tables go to a collapsed appendix.
Run: wall time per stage and in total, the machine, the versions and the command (``midm/demo_env.py``).
"""
from __future__ import annotations

import math

from midm import report_format as fmt

LABELS = {"base": "demo Base (tiny)", "mini": "demo Mini (tiny)", "base_sft": "demo Base-inst (tiny)",
          "mini_sft": "demo Mini-inst (tiny)"}


def _verdict(score: float, chance: float, n: int, predicted: dict[str, int]) -> str:
    """"at chance" when the score is within two binomial standard errors of the chance level."""
    p = chance / 100
    band = 200 * math.sqrt(p * (1 - p) / max(n, 1))
    parts = ["at chance" if abs(score - chance) <= band else ("above chance" if score > chance else "below chance")]
    total = sum(predicted.values())
    if total:
        top, top_n = max(predicted.items(), key=lambda kv: kv[1])
        if top_n == total:
            parts.append(f"answers “{top}” every time")
    return "; ".join(parts)


def _answers(mapping: dict[str, int]) -> str:
    total = sum(mapping.values())
    return " · ".join(f"{choice} {fmt.percent(n, total)}" for choice, n in mapping.items()) if total else "–"


def _card_columns(rows: list[tuple[str, dict]]) -> list[str]:
    """Published numbers beside ours, only for the card columns we ran."""
    from evaluation.tables import TABLES, load_published

    published = load_published()
    lines: list[str] = []
    for spec in TABLES:
        cols = [(i, c) for i, c in enumerate(spec.columns)
                if c.bench and not c.avg_of and any(c.bench in s for _, s in rows)]
        if not cols:
            continue
        lines += [f"| model | {' | '.join(c.title for _, c in cols)} |", "|---|" + "---:|" * len(cols)]
        for model, cells in published[spec.key]["rows"].items():
            lines.append(f"| {model} | {' | '.join(cells[i] for i, _ in cols)} |")
        for label, scores in rows:
            lines.append(f"| **{label} (ours)** | " + " | ".join(
                f"{scores[c.bench]:.1f}" if c.bench in scores else "–" for _, c in cols) + " |")
        lines.append("")
    return lines


def _card_appendix(table_md: str | None) -> list[str]:
    from evaluation.tables import load_published, render_markdown

    text = render_markdown(load_published(), [])  # published rows only: ours are in the tables above
    body = [("#" + line) if line.startswith("###") else line for line in text.splitlines()
            if not line.startswith("## ")]
    return ['<details markdown="1">', "<summary>Appendix: the Mi:dm 2.0 model card's tables (published numbers)"
            "</summary>", "", *body, "", "</details>"]


def eval_section(e: dict, claims: list[str]) -> list[str]:
    results = e.get("results") or {}
    lines = ["## 8. Evaluation", "",
             "Log-likelihood multiple choice through lm-eval (`midm eval`), on the bundled offline Korean NLI sets "
             "(`-inst` models through their chat template). Chance is one answer in three; a model that always "
             "gives the same answer scores that answer's share of the gold labels.", "",
             "| model | benchmark | accuracy | chance | examples | answers given | correct answers | reading |",
             "|---|---|---:|---:|---:|---|---|---|"]
    at_chance, rows = [], []
    for name, summary in results.items():
        label = LABELS.get(name, name)
        scores = {}
        for bench, b in (summary.get("benchmarks") or {}).items():
            if b.get("score") is None:
                continue
            scores[bench] = b["score"]
            answers, chance = b.get("answers") or {}, b.get("chance")
            verdict = _verdict(b["score"], chance, b.get("n_samples", 0), answers.get("predicted") or {}) \
                if chance is not None else "–"
            at_chance.append(verdict.startswith("at chance"))
            lines.append(f"| {label} | {b.get('title', bench)} | {b['score']:.1f} | "
                         f"{'–' if chance is None else f'{chance:.1f}'} | {fmt.count(b.get('n_samples'))} | "
                         f"{_answers(answers.get('predicted') or {})} | {_answers(answers.get('gold') or {})} | "
                         f"{verdict} |")
        rows.append((label, scores))
    lines.append("")
    if at_chance:
        n_chance = sum(at_chance)
        claims.append(f"**Evaluation**: {n_chance} of {len(at_chance)} scores are at chance level (within two standard "
                      "errors of one in three) — expected for models of this size trained for minutes; the numbers "
                      "show the pipeline works, not that the models understand NLI.")
        lines += [claims[-1].replace("**Evaluation**: ", "Reading: "), ""]
    card = _card_columns(rows)
    if card:
        lines += ["Model-card columns we ran, published numbers beside ours:", "", *card]
    else:
        lines += ["No benchmark run here is a column of the Mi:dm 2.0 model card, so our rows are not "
                  "placed in the card's tables (`midm eval` runs the card's benchmarks on real models).", ""]
    return lines + _card_appendix(e.get("table_md"))


def run_summary_line(env: dict | None, timings: dict[str, float]) -> str:
    total = sum(timings.values())
    where = ""
    if env:
        m = env.get("machine") or {}
        where = f" on {m.get('usable_cores')} CPU cores ({m.get('torch_threads')} torch threads)"
    return (f"{len(timings)} stages in **{fmt.seconds(total)}**{where}; details under [Run](#run)." if timings
            else "Stage timings were not recorded.")


def run_section(env: dict | None, timings: dict[str, float]) -> list[str]:
    lines = ["## Run {#run}", ""]
    if timings:
        total = sum(timings.values())
        lines += ["| stage | wall time | share |", "|---|---:|---:|"]
        lines += [f"| {stage} | {fmt.seconds(s)} | {fmt.percent(s, total)} |" for stage, s in timings.items()]
        lines += [f"| **total** | **{fmt.seconds(total)}** | |", ""]
    if env:
        m, v = env.get("machine") or {}, env.get("versions") or {}
        omp = m.get("OMP_NUM_THREADS")
        lines += [f"Machine: {m.get('logical_cores')} logical CPU cores, {m.get('usable_cores')} usable by this run; "
                  f"torch uses {m.get('torch_threads')} intra-op threads "
                  f"({'OMP_NUM_THREADS=' + omp if omp else 'OMP_NUM_THREADS not set'}); {m.get('platform')}.", "",
                  "| software | version |", "|---|---|"]
        lines += [f"| {name} | {version or 'not installed'} |" for name, version in v.items()]
        lines += ["", f"Code: commit `{env.get('commit') or 'unknown'}`. Reproduce (from the repository root; "
                      "`make demo` runs the defaults):", "", "```", env.get("command", "midm demo"), "```", ""]
    return lines
