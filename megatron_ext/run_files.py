"""The files a training run writes, named once, and how to read them back (torch-free).

``RUN/metrics.jsonl`` (one JSON object per logged step: loss, val_loss, lr, tokens/s …, written by
``metrics.MetricsLogger``), ``RUN/summary.json`` (``Trainer`` at the end of a finished run), and the
summaries of the checkpoint-producing stages. The demo and the benchmarks read runs through this
module instead of restating file names and formats.
"""
from __future__ import annotations

import json
from pathlib import Path

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
PRUNE_SUMMARY_FILE = "prune_summary.json"
DUS_SUMMARY_FILE = "dus_summary.json"


def read_metrics(run_dir: str | Path) -> list[dict]:
    """Every logged record of a run, in step order."""
    text = (Path(run_dir) / METRICS_FILE).read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def last_logged(run_dir: str | Path, step: int) -> dict:
    """The last record of ``step`` in ``metrics.jsonl`` ({} when none). Unlike :func:`read_metrics` it
    skips a torn line: it reads the run a killed trainer left, to write that run's missing summary."""
    path = Path(run_dir) / METRICS_FILE
    found: dict = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("step") == step:
            found = record
    return found


def read_curve(run_dir: str | Path) -> dict:
    """A run's loss curves: ``{"run", "steps", "final_loss", "final_val_loss", "val_curve", "loss_curve"}``.

    ``val_curve``/``loss_curve`` are ``[(step, loss), …]`` in nats/token.
    """
    records = read_metrics(run_dir)
    val = [(r["step"], r["val_loss"]) for r in records if r.get("val_loss") is not None]
    return {"run": Path(run_dir).name, "steps": records[-1]["step"], "final_loss": records[-1]["loss"],
            "final_val_loss": val[-1][1] if val else None, "val_curve": val,
            "loss_curve": [(r["step"], r["loss"]) for r in records]}


def read_summary(run_dir: str | Path) -> dict | None:
    """``RUN/summary.json`` of a finished run, or None when the run has not finished."""
    path = Path(run_dir) / SUMMARY_FILE
    return json.loads(path.read_text()) if path.is_file() else None
