"""``demo_out/report.md`` and ``report.html``: what a newcomer wants to read after ``make demo``.

Built only from the stages' JSON summaries (``OUT/summaries/*.json``) and the run folders' metrics, so it
can be regenerated at any time (``midm demo --stages report --force``). Every comparison names its
baseline and says in one sentence, with the numbers, whether the expected result held in this run.
HTML through Python-Markdown (``midm/report_html.py``); plots in one style (``midm/demo_plots.py``).
"""
from __future__ import annotations

import json
from pathlib import Path

from midm import report_format as fmt
from midm.demo_plots import Level, Plot, Series, draw
from midm.report_html import to_html

TITLE = "Mi:dm 2.0 lineage at tiny scale — demo report"


def _load(ctx, name: str) -> dict | None:
    path = ctx.path("summaries", f"{name}.json")
    return json.loads(path.read_text()) if path.exists() else None


def _tokens_seen(curve: dict) -> str:
    per_step = curve.get("tokens_per_step")
    return fmt.tokens(curve["steps"] * per_step) if per_step else "–"


def _budget(curve: dict) -> str:
    """``12 k tokens`` (or ``6 steps`` for a summary written before tokens were recorded)."""
    return f"{_tokens_seen(curve)} tokens" if curve.get("tokens_per_step") else f"{curve['steps']} steps"


def _curve_table(named: dict[str, dict]) -> list[str]:
    rows = ["| run | steps | tokens | final train loss | final validation loss |", "|---|---:|---:|---:|---:|"]
    for label, c in named.items():
        rows.append(f"| {label} | {fmt.count(c['steps'])} | {_tokens_seen(c)} | {fmt.loss(c.get('final_loss'))} | "
                    f"{fmt.loss(c.get('final_val_loss'))} |")
    return rows


def _filter_section(stats: dict) -> list[str]:
    read, kept, dropped = stats.get("records_read") or 0, stats.get("kept") or 0, stats.get("dropped_total") or 0
    accounted = ("Every document is accounted for (read = kept + dropped)." if stats.get("balanced") else
                 "**The accounting does not balance**: " + "; ".join(stats.get("problems") or ["read ≠ kept + dropped"])
                 + ".")
    lines = ["## 1. Data filtering", "",
             f"Read **{fmt.count(read)}** documents, kept **{fmt.count(kept)}** ({fmt.percent(kept, read)}), "
             f"dropped **{fmt.count(dropped)}**. {accounted}"]
    rows = [(stage, reason, n) for stage, reasons in (stats.get("dropped") or {}).items()
            for reason, n in (reasons.items() if isinstance(reasons, dict) else [("", reasons)])]
    if rows:
        lines += ["", "| stage | reason | dropped | share of read |", "|---|---|---:|---:|"]
        for stage, reason, n in sorted(rows, key=lambda r: -r[2]):
            lines.append(f"| {stage} | {reason.replace('_', ' ')} | {fmt.count(n)} | {fmt.percent(n, read, 1)} |")
    return lines


def _tokenizer_section(ctx, tok: dict) -> list[str]:
    meta = tok.get("meta") or {}
    size, padded = meta.get("vocab_size"), meta.get("padded_vocab_size")
    vocab = f"**{fmt.count(size)}** pieces" + (f", padded to {fmt.count(padded)} rows of the embedding"
                                              if padded and padded != size else "")
    lines = ["## 2. Tokenizer", "",
             f"Vocabulary: {vocab}. Measured on {fmt.count(tok.get('heldout_docs'))} held-out documents "
             "(kept out of tokenizer training); lower tokens per character is better."]
    rows = (tok.get("eval") or {}).get("rows") or []
    if rows:
        lines += ["", "| tokenizer | vocabulary | text | documents | tokens / char | tokens / word | bytes / token "
                      "| byte fallback | exact round trip |", "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
        for r in rows:
            lines.append(f"| {r['tokenizer']} | {fmt.count(r.get('vocab_size'))} | {r['text']} | "
                         f"{fmt.count(r.get('docs'))} | {r.get('tokens_per_char', 0):.3f} | "
                         f"{r.get('tokens_per_word', 0):.2f} | {r.get('bytes_per_token', 0):.2f} | "
                         f"{fmt.percent(r.get('byte_fallback_rate', 0), 1, 2)} | "
                         f"{fmt.percent(r.get('roundtrip_exact', 0), 1, 1)} |")
    if ctx.path("tokenizer", "eval", "eval.png").exists():
        lines += ["", "![tokenizer compression](tokenizer/eval/eval.png)"]
    return lines


def _pretrain_section(ctx, p: dict, figures: dict) -> list[str]:
    figures["parent"] = draw(Plot("Pretraining the parent", [Series("parent", p)]), ctx.path("parent_loss.png"))
    return ["## 3. Pretraining the parent", "", *_curve_table({"parent": p}), "",
            f"![parent loss]({figures['parent']})"]


def _dus_section(ctx, c: dict, parent: dict | None, figures: dict, claims: list[str]) -> list[str]:
    dus, scratch, longer = c["dus"], c["scratch"], c.get("parent_continued")
    same = _budget(dus)
    arms = {"DuS + continued training": dus, "same depth from scratch": scratch}
    if longer:
        arms["parent trained on (no DuS)"] = longer
    levels = [Level("parent before continuation", parent["final_val_loss"])] \
        if parent and parent.get("final_val_loss") is not None else []
    figures["dus"] = draw(Plot(f"Depth-up scaling vs. baselines ({same} each)",
                               [Series(k, v) for k, v in arms.items()], levels), ctx.path("dus_vs_scratch.png"))
    found = []
    if longer:
        found.append(fmt.lower_is_better("DuS beats simply training the parent longer on the same tokens",
                                         ("the DuS model", dus.get("final_val_loss")),
                                         ("the parent trained on", longer.get("final_val_loss")), "validation loss"))
    else:
        found.append("**Not measured** — DuS vs. the parent trained on: this run has no `parent_continued` arm "
                     "(re-run `midm demo --stages continued,report --force`).")
    found.append(fmt.lower_is_better("DuS starts the deep model ahead of a from-scratch one",
                                     ("the DuS model", dus.get("final_val_loss")),
                                     ("the same depth from scratch", scratch.get("final_val_loss")), "validation loss"))
    claims += found[:2]
    text = [f"The parent's layers are duplicated into a deeper model (SOLAR-style depth-up scaling), then trained on "
            f"for {same}. Baselines on the same {same}: the deep model from random initialisation, and the parent "
            "itself trained on without growing — the comparison that decides whether the extra depth paid off. "
            "The grey line is the parent's validation loss before any of the three."]
    return ["## 4. Depth-up scaling", "", *text, "", *_curve_table(arms), "", *[f"- {s}" for s in found], "",
            f"![DuS vs baselines]({figures['dus']})"]


def _distill_section(ctx, d: dict, teacher: dict | None, figures: dict, claims: list[str]) -> list[str]:
    arms = {"prune + distill": d["distill"], "prune + LM loss": d["pruned_lm"], "same size from scratch": d["scratch"]}
    same = _budget(d["distill"])
    teacher_loss = (teacher or {}).get("final_val_loss")
    levels = [Level("teacher (DuS model)", teacher_loss)] if teacher_loss is not None else []
    figures["distill"] = draw(Plot(f"Pruning + distillation vs. alternatives ({same} each)",
                                   [Series(k, v) for k, v in arms.items()], levels), ctx.path("distill_vs_scratch.png"))
    x = d["distill"].get("final_val_loss")
    found = [fmt.lower_is_better("distilling from the teacher beats the LM loss alone after pruning",
                                 ("prune + distill", x), ("prune + LM loss", d["pruned_lm"].get("final_val_loss")),
                                 "validation loss"),
             fmt.lower_is_better("pruning + distillation beats training the small model from scratch",
                                 ("prune + distill", x), ("the same size from scratch", d["scratch"].get("final_val_loss")),
                                 "validation loss")]
    if x is not None and teacher_loss is not None:
        found.append(f"Gap to the teacher: the distilled Mini ends at {fmt.loss(x)}, the teacher at "
                     f"{fmt.loss(teacher_loss)} ({x - teacher_loss:+.3f}).")
    claims += found[:2]
    return ["## 5. Pruning + logit distillation", "",
            f"The DuS model is pruned to the Mini's shape, then trained for {same} three ways. The grey line is "
            "the teacher's validation loss: the level a perfect student would reach.", "",
            *_curve_table(arms), "", *[f"- {s}" for s in found], "", f"![distill vs alternatives]({figures['distill']})"]


def _generation_section(g: dict) -> list[str]:
    lines = ["## 6. Generations", "",
             "Sampled with a fixed seed (temperature 0.8, top-p 0.95, 40 new tokens) from the exported Hugging Face "
             "models.[^bytes]", "", "| model | prompt | continuation |", "|---|---|---|"]
    dangling = invalid = 0
    for model, items in g["generations"].items():
        for item in items:
            dangling += item.get("dangling_bytes", 0)
            invalid += item.get("invalid_bytes", 0)
            tail = " …" if item.get("dangling_bytes") else ""
            lines.append(f"| {model} | {fmt.cell(item['prompt'])} | {fmt.cell(item['continuation'])}{tail} |")
    lines += ["", "[^bytes]: Our tokenizer spells characters outside its vocabulary as UTF-8 byte tokens. A "
              "continuation cut off inside a character ends in an incomplete byte sequence: it is dropped and "
              f"marked `…` ({dangling} bytes in this table). Byte tokens that form no character are shown in hex as "
              f"`⟨ec 9d⟩` ({invalid} bytes here) instead of U+FFFD replacement characters."]
    return lines


def write_report(ctx) -> dict:
    """Write ``report.md``, ``report.html`` and the plots into ``ctx.out``; returns their paths."""
    from midm.demo_report_sections import eval_section, run_section, run_summary_line
    from midm.demo_sft import report_section

    figures: dict[str, str] = {}
    claims: list[str] = []
    body: list[str] = []
    if (f := _load(ctx, "filter")) is not None:
        body += _filter_section(f["stats"]) + [""]
    if (t := _load(ctx, "tokenizer")) is not None:
        body += _tokenizer_section(ctx, t) + [""]
    parent = _load(ctx, "pretrain")
    if parent is not None:
        body += _pretrain_section(ctx, parent, figures) + [""]
    continued = _load(ctx, "continued")
    if continued is not None:
        body += _dus_section(ctx, continued, parent, figures, claims) + [""]
    if (d := _load(ctx, "distill")) is not None:
        body += _distill_section(ctx, d, (continued or {}).get("dus"), figures, claims) + [""]
    if (g := _load(ctx, "generate")) is not None:
        body += _generation_section(g) + [""]
    body += report_section(_load(ctx, "sft"), _load(ctx, "chat"), claims)
    if (e := _load(ctx, "eval")) is not None:
        body += eval_section(e, claims) + [""]
    env, timings = _load(ctx, "run"), _load(ctx, "timings") or {}
    body += run_section(env, timings)
    head = [f"# {TITLE}", "", run_summary_line(env, timings), ""]
    if claims:
        head += ["**What held in this run** (details in each section):", "", *[f"- {c}" for c in claims], ""]
    text = "\n".join(head + body) + "\n"
    report_md, report_html = ctx.path("report.md"), ctx.path("report.html")
    for path, content in ((report_md, text), (report_html, to_html(text, TITLE))):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(path)
    return {"report_md": str(report_md), "report_html": str(report_html), "figures": figures, "claims": claims}


def write_report_for(out: str | Path) -> dict:
    """``write_report`` for a finished demo folder (no ``DemoContext`` needed)."""
    out = Path(out)

    class _Folder:
        def path(self, *parts: str) -> Path:
            return out.joinpath(*parts)

    return write_report(_Folder())
