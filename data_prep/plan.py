"""The filter run's shape, from the config alone: phases, the steps that execute them, stage names.

Import-light (no datatrove): ``midm slurm render data-filter`` reads it to write one dependent
Slurm job per step, and :func:`data_prep.pipeline.build_executors` builds exactly these steps.

Streaming stages run back to back inside one phase; dedup (exact: signatures → find → filter;
MinHash: signatures → buckets → cluster → filter, datatrove's steps) and the quality top-fraction
cut need every task's output before they can decide, so each starts a new phase. A *step* is one
datatrove executor: ``tasks`` ranks that may run in parallel, and which may start only once every
rank of the step before it has finished (``sbatch --dependency=afterok``). The last step,
``summary``, merges the counts into ``OUT/stats.json`` and marks the output complete.
"""
from __future__ import annotations

from dataclasses import dataclass

SUMMARY_STEP = "summary"


@dataclass(frozen=True)
class Step:
    name: str   # unique in the run: also its log folder under OUT/_work/logs/
    tasks: int  # ranks (Slurm array size)


def plan_phases(cfg: dict) -> list[tuple[str, list[str]]]:
    """[(phase kind, stage names)]: 'stream' phases and the 'dedup' / 'cut' barriers."""
    stages = cfg["stages"]
    before = list(stages[: stages.index("dedup")]) if "dedup" in stages else list(stages)
    after = list(stages[stages.index("dedup") + 1:]) if "dedup" in stages else []
    phases: list[tuple[str, list[str]]] = [("stream", before)]
    if "dedup" in stages:
        phases.append(("dedup", after))
    if "quality" in stages and float(cfg["quality"].get("keep_top_fraction", 1.0)) < 1.0:
        phases.append(("cut", []))
    return phases


def counted_stage_names(cfg: dict) -> list[str]:
    """Stage names as they appear in ``stats.json`` (dedup and quality split into their parts)."""
    names: list[str] = []
    for s in cfg["stages"]:
        if s == "dedup":
            names += [n for n, on in (("dedup.exact", cfg["dedup"].get("exact", True)),
                                      ("dedup.minhash", cfg["dedup"].get("minhash", True))) if on]
        elif s == "quality":
            names.append("quality.score")
            if float(cfg["quality"].get("keep_top_fraction", 1.0)) < 1.0:
                names.append("quality.cut")
        else:
            names.append(s)
    return names


def dedup_substeps(cfg: dict, tasks: int) -> list[Step]:
    """The steps that must finish before the dedup phase's own filtering step (``phase`` prefix added by caller)."""
    d = cfg["dedup"]
    use_exact, use_mh = d.get("exact", True), d.get("minhash", True)
    steps: list[Step] = []
    if use_exact:
        steps += [Step("ex-sigs", tasks), Step("ex-find", 1)]
        if use_mh:
            steps.append(Step("ex-filter", tasks))
    if use_mh:
        steps += [Step("mh-sigs", tasks), Step("mh-buckets", int(d.get("num_buckets", 14))), Step("mh-cluster", 1)]
    return steps


def filter_steps(cfg: dict) -> list[Step]:
    """Every step of a filter run in dependency order (each waits for all ranks of the previous)."""
    tasks = int(cfg["io"].get("tasks", 1))
    steps: list[Step] = []
    for i, (kind, _) in enumerate(plan_phases(cfg)):
        phase = f"{i}_{kind}"
        if kind == "dedup":
            steps += [Step(f"{phase}_{s.name}", s.tasks) for s in dedup_substeps(cfg, tasks)]
        steps.append(Step(phase, tasks))
    steps.append(Step(SUMMARY_STEP, 1))
    return steps
