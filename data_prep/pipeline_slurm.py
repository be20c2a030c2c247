"""The filter run under Slurm: submit its steps as dependent array jobs, read their stats, and run one
rank of one step (an array task).

:func:`submit_filter` / :func:`slurm_stats` are ``midm data filter --executor slurm`` (datatrove's Slurm
executor, one array per step); :func:`run_step` is ``midm data filter --step NAME --rank R``, what each
array task of ``midm slurm submit data-filter`` runs. The steps and their executors are
:func:`data_prep.pipeline.build_executors`'s, so a Slurm run and a local one write the same files.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from data_prep.accounting import STATS_FILE
from data_prep.errors import DataError
from data_prep.executors import ExecOptions
from data_prep.pipeline import RunPaths, _checked_sources, _checked_stats, _same_run, build_executors
from data_prep.plan import SUMMARY_STEP, filter_steps

__all__ = ["submit_filter", "slurm_stats", "run_step", "SlurmRunFailed"]


def submit_filter(inputs: list[str], out: str, cfg: dict, opts: ExecOptions, keep_rejects: bool = False,
                  fresh: bool = False) -> list:
    """Submit every unfinished rank of every step as dependent Slurm array jobs; returns the
    :class:`data_prep.slurm_exec.StepJobs` (also in ``OUT/_work/slurm_jobs.json``).

    Raises :class:`DataError` without ``sbatch`` on PATH, while jobs of a previous submission to
    ``OUT`` are queued or running, for bad inputs, and when sbatch refuses a job.
    """
    if shutil.which("sbatch") is None:
        raise DataError("`sbatch` is not on PATH: run `--executor slurm` on a Slurm submit host "
                        "(or use --executor local)")
    from data_prep.slurm_exec import refuse_if_active, submit

    from data_prep.docio.outputs import write_run_record

    refuse_if_active(Path(out).resolve())  # before --fresh deletes what those jobs write to
    sources = _checked_sources(inputs, cfg, exclude=Path(out).resolve())
    record = _same_run(inputs, sources, cfg, keep_rejects, out, check=not fresh)
    executors, summary_step = build_executors(inputs, out, cfg, opts, keep_rejects, fresh, check_format=True)
    write_run_record(RunPaths(Path(out).resolve()).work, record)
    if not any(ex.get_incomplete_ranks() for ex in executors):  # a finished run: nothing to submit
        summary_step.run()  # build_executors marked OUT in progress; the summary marks it complete again
    return submit(executors, RunPaths(Path(out).resolve()).work)


class SlurmRunFailed(DataError):
    """A submitted run's jobs left the queue without completing ``OUT`` (exit 1: a job failed or was cancelled)."""

    exit_code = 1


def slurm_stats(out: str, steps: list) -> dict:
    """The stats of a submitted run whose jobs have all left the queue.

    Raises :class:`SlurmRunFailed` naming the first step with unfinished ranks and its logs when
    the summary job did not complete ``OUT``; :class:`DataError` as :func:`run_filter` does."""
    from data_prep.docio.inputs import read_manifest

    paths = RunPaths(Path(out).resolve())
    manifest = read_manifest(paths.out)
    if not (manifest and manifest.get("complete")):
        for step in steps:
            logs = paths.work / "logs" / step.step
            missing = [r for r in range(step.tasks) if not (logs / "completions" / f"{r:05d}").exists()]
            if missing:
                ids = ",".join(step.job_ids) or "none"
                raise SlurmRunFailed(
                    f"step {step.step} (job {ids}) did not complete rank(s) {missing}: a task failed or was "
                    f"cancelled, and the jobs after it were cancelled. Logs: {logs}/slurm_logs/ and "
                    f"{logs}/logs/. Run the same command again: only the unfinished ranks are resubmitted")
        raise SlurmRunFailed(f"the jobs ended but {paths.out} is not marked complete; see {paths.work / 'logs'}")
    return _checked_stats(str(paths.out / STATS_FILE))


def run_step(inputs: list[str], out: str, cfg: dict, step: str, rank: int, keep_rejects: bool = False) -> dict | None:
    """Run rank ``rank`` of one step of :func:`data_prep.plan.filter_steps` (a Slurm array task).

    A finished rank is skipped (datatrove's completion markers), so a re-submitted chain resumes.
    Returns the stats for the ``summary`` step, else None. Raises :class:`DataError` for an
    unknown step or a rank outside the step's tasks.
    """
    steps = {s.name: s for s in filter_steps(cfg)}
    if step not in steps:
        raise DataError(f"--step {step!r} is not a step of this filter run; its steps are {', '.join(steps)}")
    if not 0 <= rank < steps[step].tasks:
        raise DataError(f"--rank {rank} is outside step {step}'s {steps[step].tasks} task(s)")
    first = step == next(iter(steps))
    sources = _checked_sources(inputs, cfg, exclude=Path(out).resolve())
    record = _same_run(inputs, sources, cfg, keep_rejects, out, check=True)
    executors, summary_step = build_executors(inputs, out, cfg, ExecOptions(kind="local", workers=1), keep_rejects,
                                              check_format=first and rank == 0, start=first and rank == 0)
    if first and rank == 0:
        from data_prep.docio.outputs import write_run_record

        write_run_record(RunPaths(Path(out).resolve()).work, record)
    if step == SUMMARY_STEP:
        summary_step.run()
        return _checked_stats(summary_step.stats_path)
    names = [s.name for s in filter_steps(cfg)]
    executors[names.index(step)]._run_for_rank(rank)
    return None
