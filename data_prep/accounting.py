"""Every document is accounted for.

Each stage writes ``counts/{stage}/{rank:05d}.json`` = ``{"in": n, "out": m,
"dropped:REASON": k, ...}`` when its task finishes. :func:`summarize` merges them (after all
tasks, local or Slurm) into one stats JSON and checks the identity

    records read = kept + Σ dropped (per stage, per reason)

where malformed input is the ``input`` stage's drops. A stage whose counts do not add up
(``in != out + Σ dropped``) is reported, never silently ignored.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

STATS_FILE = "stats.json"  # OUT/stats.json: read = kept + Σ dropped, per stage and reason


def write_counts(counts_dir: str, stage: str, rank: int, counts: dict) -> None:
    folder = Path(counts_dir) / stage
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{rank:05d}.json.tmp"
    tmp.write_text(json.dumps(dict(counts), sort_keys=True))
    os.replace(tmp, folder / f"{rank:05d}.json")


def read_counts(counts_dir: str, stage: str) -> Counter:
    total: Counter = Counter()
    folder = Path(counts_dir) / stage
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        total.update(json.loads(f.read_text()))
    return total


def summarize(counts_dir: str, stages: list[str], kept_stage: str | None = None) -> dict:
    """Merge per-rank counts into the run's stats (``stages`` in pipeline order, ``input`` first)."""
    per_stage: dict[str, dict] = {}
    dropped_total = 0
    problems: list[str] = []
    for stage in ["input", *stages]:
        c = read_counts(counts_dir, stage)
        dropped = {k.split(":", 1)[1]: v for k, v in sorted(c.items()) if k.startswith("dropped:")}
        extra = {k: v for k, v in sorted(c.items()) if not k.startswith("dropped:") and k not in ("in", "out")}
        n_in, n_out = c.get("in", 0), c.get("out", 0)
        if n_in != n_out + sum(dropped.values()):
            problems.append(f"stage {stage}: in={n_in} != out={n_out} + dropped={sum(dropped.values())}")
        per_stage[stage] = {"in": n_in, "out": n_out, "dropped": dropped, **({"stats": extra} if extra else {})}
        dropped_total += sum(dropped.values())
    records = per_stage["input"]["in"]
    last = kept_stage or (stages[-1] if stages else "input")
    kept = per_stage[last]["out"]
    balanced = records == kept + dropped_total and not problems
    if records != kept + dropped_total:
        problems.append(f"records={records} != kept={kept} + dropped={dropped_total}")
    return {
        "records_read": records,
        "kept": kept,
        "dropped_total": dropped_total,
        "dropped": {s: v["dropped"] for s, v in per_stage.items() if v["dropped"]},
        "balanced": balanced,
        "problems": problems,
        "stages": per_stage,
    }
