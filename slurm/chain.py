"""``data-filter`` under Slurm: one job per step of the filter pipeline, chained with ``afterok``.

The filter's dedup (exact, then MinHash) and its quality top-fraction cut decide over *all*
documents, so an array of independent ``midm data filter`` runs (one per shard) deduplicated and
cut per shard. Here the run's steps come from :func:`data_prep.plan.filter_steps` — the very
steps :func:`data_prep.pipeline.build_executors` builds — and step *k* is an array of its task
count whose tasks each run ``midm data filter IN OUT --tasks N --step k --rank $SLURM_ARRAY_TASK_ID``;
it is submitted with ``--dependency=afterok:<job of step k-1>`` (for an array job: every task of
it). The last step, ``summary``, writes ``OUT/stats.json`` and marks ``OUT`` complete.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from slurm.quoting import RenderError, Var, Word, quote_command, sbatch_value
from slurm.stages import Stage, StageContext


def filter_config(ctx: StageContext, workdir: Path, tasks: int | None) -> dict:
    """The filter config the jobs will run with (packaged YAML + ``--config``, ``--stages``, tasks)."""
    from data_prep.config import load_config
    from data_prep.errors import DataError

    stages = ctx.args.get("stages")
    config = ctx.args.get("config")
    try:
        cfg = load_config(str(config) if config is not None else None,
                          [s.strip() for s in str(stages).split(",") if s.strip()] if stages is not None else None)
    except DataError as err:
        raise RenderError(str(err)) from None
    if tasks is not None:
        cfg["io"]["tasks"] = tasks
    return cfg


def render_chain(opts, stage: Stage, ctx: StageContext, program: list[Word], widths: set[int],
                 preamble: Callable[[list[str]], str], workdir: Path, job_name: str, rendered):
    """Fill ``rendered`` (a :class:`slurm.render.Rendered`) with one :class:`ChainJob` per step and
    the bash script that submits them in order, each depending on the previous one."""
    from data_prep.plan import filter_steps

    from slurm.render import ChainJob, _fill, _sbatch_lines, _srun, _template

    assert not widths, "render._stage_words refuses {shard} for a chain"
    cfg = filter_config(ctx, workdir, int(opts.array) if opts.array else None)
    tasks = int(cfg["io"]["tasks"])
    steps = filter_steps(cfg)
    jobs: list[ChainJob] = []
    for k, step in enumerate(steps):
        name = sbatch_value(f"{job_name}-{step.name}", "job name")
        array = str(step.tasks) if step.tasks > 1 else None
        log_pattern = str(rendered.log_dir / ("%x-%A_%a.out" if array else "%x-%j.out"))
        step_opts = dataclasses.replace(opts, array=array)
        header = _sbatch_lines(step_opts, stage, 0, 1, name, log_pattern)
        argv = [*program, "--tasks", str(tasks), "--step", step.name, "--rank", Var("MIDM_RANK")]
        launch = _srun(step_opts, 1, 1, 0) + " \\\n    " + quote_command(argv)
        body = _fill(_template("step.sh"), {"STEP": step.name, "TASKS": str(step.tasks), "LAUNCH": launch})
        jobs.append(ChainJob(step.name, preamble(header) + body, name, log_pattern, step.tasks,
                             k - 1 if k else None))
    blocks = []
    for k, job in enumerate(jobs):
        delimiter = f"MIDM_JOB_{k}"
        if any(line == delimiter for line in job.script.splitlines()):
            raise RenderError(f"a job script contains the line {delimiter!r}; cannot embed it")
        dep = f' --dependency=afterok:"$midm_job_{job.after}"' if job.after is not None else ""
        blocks.append(f"midm_job_{k}=$(midm_submit{dep} <<'{delimiter}'\n{job.script.rstrip()}\n{delimiter}\n)\n"
                      f'echo "[midm] step {job.step} ({job.tasks} task(s)): job $midm_job_{k}" >&2')
    rendered.script = _fill(_template("chain.sh"), {"STAGE": stage.name, "RECIPE": ctx.recipe_name or "(none)",
                                                     "COUNT": str(len(jobs)), "JOBS": "\n".join(blocks),
                                                     "LAST": str(len(jobs) - 1)})
    rendered.jobs = jobs
    rendered.job_name = jobs[-1].job_name
    rendered.log_pattern = jobs[-1].log_pattern
    return rendered
