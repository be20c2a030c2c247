"""``demo_out/report.md`` and ``report.html``: what a newcomer wants to read after ``make demo``.

Built only from the stages' JSON summaries and run logs, so it can be regenerated at any time
(``midm demo --stages report --force``).
"""
from __future__ import annotations

import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _load(ctx, name: str) -> dict | None:
    path = ctx.path("summaries", f"{name}.json")
    return json.loads(path.read_text()) if path.exists() else None


def _plot(curves: list[tuple[str, list]], title: str, path: Path, key: str = "val") -> str:
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for label, points in curves:
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o" if key == "val" else None, markersize=3, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss" if key == "val" else "training loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _filter_section(stats: dict) -> list[str]:
    lines = ["## 1. Data filtering", ""]
    read, kept = stats.get("records_read"), stats.get("kept")
    lines.append(f"Read **{read}** documents, kept **{kept}**, dropped **{stats.get('dropped_total')}** "
                 f"(accounting balanced: {stats.get('balanced')}).")
    dropped = stats.get("dropped", {})
    if dropped:
        lines += ["", "| stage | reason | dropped |", "|---|---|---|"]
        for stage, reasons in dropped.items():
            if isinstance(reasons, dict):
                for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1]):
                    lines.append(f"| {stage} | {reason} | {count} |")
            else:
                lines.append(f"| {stage} | | {reasons} |")
    return lines


def _tokenizer_section(ctx, tok: dict) -> list[str]:
    lines = ["## 2. Tokenizer", "", f"Vocabulary: {tok.get('meta', {})}", ""]
    table = ctx.path("tokenizer", "eval", "eval.md")
    if table.exists():
        lines += [table.read_text().strip(), ""]
    if ctx.path("tokenizer", "eval", "eval.png").exists():
        lines.append("![tokenizer compression](tokenizer/eval/eval.png)")
    return lines


def _curve_rows(named: dict) -> list[str]:
    rows = ["| run | steps | final train loss | final validation loss |", "|---|---|---|---|"]
    for label, curve in named.items():
        val = curve.get("final_val_loss")
        rows.append(f"| {label} | {curve['steps']} | {curve['final_loss']:.4f} | "
                    f"{'' if val is None else f'{val:.4f}'} |")
    return rows


def write_report(ctx) -> dict:
    figures = {}
    md = ["# Mi:dm 2.0 lineage at tiny scale — demo report", ""]
    timings = json.loads(ctx.path("summaries", "timings.json").read_text()) \
        if ctx.path("summaries", "timings.json").exists() else {}
    if timings:
        md += ["| stage | seconds |", "|---|---|"] + [f"| {k} | {v:.1f} |" for k, v in timings.items()]
        md += [f"| **total** | **{sum(timings.values()):.1f}** |", ""]
    if (f := _load(ctx, "filter")) is not None:
        md += _filter_section(f["stats"]) + [""]
    if (t := _load(ctx, "tokenizer")) is not None:
        md += _tokenizer_section(ctx, t) + [""]
    if (p := _load(ctx, "pretrain")) is not None:
        figures["parent"] = _plot([("parent (train)", p["loss_curve"])], "Pretraining the parent",
                                  ctx.path("parent_loss.png"), key="train")
        md += ["## 3. Pretraining the parent", "", *_curve_rows({"parent": p}), "",
               f"![parent loss]({figures['parent']})", ""]
    if (c := _load(ctx, "continued")) is not None:
        figures["dus"] = _plot([("DuS + continued training", c["dus"]["val_curve"]),
                                ("same depth from scratch", c["scratch"]["val_curve"])],
                               "Depth-up scaling vs. scratch (same tokens)", ctx.path("dus_vs_scratch.png"))
        md += ["## 4. Depth-up scaling", "", *_curve_rows({"DuS + continued": c["dus"], "scratch": c["scratch"]}),
               "", f"![DuS vs scratch]({figures['dus']})", ""]
    if (d := _load(ctx, "distill")) is not None:
        figures["distill"] = _plot([("prune + distill", d["distill"]["val_curve"]),
                                    ("prune + LM loss", d["pruned_lm"]["val_curve"]),
                                    ("same size from scratch", d["scratch"]["val_curve"])],
                                   "Pruning + distillation vs. alternatives (same tokens)",
                                   ctx.path("distill_vs_scratch.png"))
        md += ["## 5. Pruning + logit distillation", "",
               *_curve_rows({"prune + distill": d["distill"], "prune + LM": d["pruned_lm"], "scratch": d["scratch"]}),
               "", f"![distill vs scratch]({figures['distill']})", ""]
    if (g := _load(ctx, "generate")) is not None:
        md += ["## 6. Generations (sampled with a fixed seed from the exported Hugging Face models)", "",
               "| model | prompt | continuation |", "|---|---|---|"]
        for model, items in g["generations"].items():
            for item in items:
                cont = item["continuation"].replace("|", "\\|").replace("\n", " ")
                md.append(f"| {model} | {item['prompt']} | {cont} |")
        md.append("")
    from midm.demo_sft import report_section

    md += report_section(_load(ctx, "sft"), _load(ctx, "chat"))
    if (e := _load(ctx, "eval")) is not None and Path(e["table_md"]).exists():
        md += ["## 8. Evaluation in the model card's layout", "", Path(e["table_md"]).read_text().strip(), ""]
    report_md = ctx.path("report.md")
    report_md.write_text("\n".join(md))
    report_html = ctx.path("report.html")
    report_html.write_text(_to_html("\n".join(md)))
    return {"report_md": str(report_md), "report_html": str(report_html), "figures": figures}


def _to_html(markdown_text: str) -> str:
    """A small Markdown → HTML rendering (headings, tables, images, paragraphs) with no extra dependency."""
    out = ["<!doctype html><html><head><meta charset='utf-8'><title>midm demo report</title><style>"
           "body{font-family:sans-serif;max-width:960px;margin:2em auto;line-height:1.45}"
           "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}"
           "th{background:#f3f3f3}img{max-width:100%}</style></head><body>"]
    table: list[list[str]] = []

    def flush_table() -> None:
        if not table:
            return
        out.append("<table>")
        for i, row in enumerate(table):
            tag = "th" if i == 0 else "td"
            out.append("<tr>" + "".join(f"<{tag}>{_inline(c)}</{tag}>" for c in row) + "</tr>")
        out.append("</table>")
        table.clear()

    for line in markdown_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                table.append(cells)
            continue
        flush_table()
        if stripped.startswith("#"):
            level = len(stripped) - len(stripped.lstrip("#"))
            out.append(f"<h{level}>{html.escape(stripped[level:].strip())}</h{level}>")
        elif stripped.startswith("!["):
            alt, src = stripped[2:].split("](", 1)
            out.append(f"<p><img alt='{html.escape(alt)}' src='{html.escape(src.rstrip(')'))}'></p>")
        elif stripped:
            out.append(f"<p>{_inline(stripped)}</p>")
    flush_table()
    out.append("</body></html>")
    return "\n".join(out)


def _inline(text: str) -> str:
    escaped = html.escape(text)
    parts = escaped.split("**")
    return "".join(f"<b>{p}</b>" if i % 2 else p for i, p in enumerate(parts))
