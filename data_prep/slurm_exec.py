"""``midm data filter --executor slurm``: the run's steps as datatrove Slurm array jobs.

:class:`MidmSlurmExecutor` is datatrove's ``SlurmPipelineExecutor``
(``datatrove/executor/slurm.py``) with what a filter run needs on a real cluster:

- no ``--partition`` / ``--mem-per-cpu`` directive unless given (the cluster's default partition
  and ``DefMemPerCPU``; a fixed ``2G`` is refused by nodes that declare less memory);
- ``--kill-on-invalid-dep=yes``: a failed or cancelled task cancels the jobs after it instead of
  leaving them pending forever (``DependencyNeverSatisfied``);
- no per-step ``merge_stats`` job (our ``summary`` job writes ``OUT/stats.json``), so a run is
  exactly one job per step of :func:`data_prep.plan.filter_steps`;
- array tasks import the same ``data_prep`` as the submitting command (its folder is put on
  ``PYTHONPATH`` after the venv is activated) and find ``launch_pickled_pipeline`` on ``PATH``.

The command submits and returns; :func:`submit` records every job in ``OUT/_work/slurm_jobs.json``
(step, job ids, the ranks submitted). A re-run resubmits only ranks without datatrove's completion
marker, and is refused while a job of the previous submission is still queued or running.
:func:`wait` (``--wait``) polls ``squeue`` until the recorded jobs have left the queue.
"""
from __future__ import annotations

import getpass
import json
import os
import shlex
import subprocess
import sysconfig
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from datatrove.executor.slurm import SlurmPipelineExecutor

import data_prep
from data_prep.errors import DataError

JOBS_FILE = "slurm_jobs.json"  # OUT/_work/slurm_jobs.json


class JobIds:
    """datatrove's ``job_id_retriever`` that also remembers every id sbatch printed (one per array
    job: a step over more tasks than ``--max-array-size`` is several)."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def __call__(self, sbatch_output: str) -> str:
        job_id = sbatch_output.split()[-1]  # "Submitted batch job 123"
        self.ids.append(job_id)
        return job_id


def env_command(venv_activate: str | None) -> str:
    """The line each array task runs before ``launch_pickled_pipeline``: activate the venv (or put
    this interpreter's scripts folder on PATH), then put this ``data_prep``'s folder first on PYTHONPATH."""
    root = str(Path(data_prep.__file__).resolve().parent.parent)
    first = (f"source {shlex.quote(venv_activate)}" if venv_activate
             else f"export PATH={shlex.quote(sysconfig.get_path('scripts'))}:\"$PATH\"")
    return f'{first} && export PYTHONPATH={shlex.quote(root)}"${{PYTHONPATH:+:$PYTHONPATH}}"'


class MidmSlurmExecutor(SlurmPipelineExecutor):
    """``SlurmPipelineExecutor`` that omits unset ``partition``/``mem-per-cpu``, cancels dependents
    of a failed job and launches no ``merge_stats`` job (see the module docstring)."""

    def get_sbatch_args(self, max_array: int = 1) -> dict:
        args = super().get_sbatch_args(max_array)
        if not self.partition:
            args.pop("partition", None)
        if self.mem_per_cpu_gb is None:
            args.pop("mem-per-cpu", None)
        args.setdefault("kill-on-invalid-dep", "yes")
        return args

    def launch_merge_stats(self) -> None:
        """Nothing: the run's ``summary`` step merges our counts into ``OUT/stats.json``."""


@dataclass
class StepJobs:
    step: str            # data_prep.plan step name (= log folder under OUT/_work/logs/)
    tasks: int
    ranks: list[int]     # the ranks submitted (those without a completion marker); [] = skipped
    job_ids: list[str] = field(default_factory=list)


def _step_name(ex: SlurmPipelineExecutor) -> str:
    return Path(ex.logging_dir.path).name


def _jobs_file(work: Path) -> Path:
    return work / JOBS_FILE


def read_jobs(work: Path) -> list[StepJobs]:
    path = _jobs_file(work)
    if not path.is_file():
        return []
    return [StepJobs(**s) for s in json.loads(path.read_text(encoding="utf-8"))["steps"]]


def queued(job_ids: list[str]) -> dict[str, str]:
    """``{job id: state}`` of those of ``job_ids`` still in the queue (pending, running, …).

    Raises :class:`DataError` when ``squeue`` cannot be run."""
    if not job_ids:
        return {}
    try:
        proc = subprocess.run(["squeue", "-h", "-u", getpass.getuser(), "-o", "%F %T"],
                              capture_output=True, text=True, check=False)
    except OSError as err:
        raise DataError(f"cannot run squeue ({err}): run --executor slurm on a Slurm submit host") from None
    if proc.returncode != 0:
        raise DataError(f"squeue failed (exit {proc.returncode}): {proc.stderr.strip()}")
    wanted = set(job_ids)
    states: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in wanted:
            states.setdefault(parts[0], parts[1])
    return states


def refuse_if_active(out: Path) -> None:
    """A re-run must not race the previous submission's jobs: raise :class:`DataError` (exit 2)
    while any job recorded in ``OUT/_work/slurm_jobs.json`` is still queued or running."""
    steps = read_jobs(out / "_work")
    alive = queued([j for s in steps for j in s.job_ids])
    if alive:
        ids = ",".join(sorted(alive, key=int))
        raise DataError(f"jobs {ids} of the previous submission of {out} are still queued or running "
                        f"(squeue -j {ids}); wait for them to end, or scancel them, then run this again "
                        "(finished ranks are skipped)")


def submit(executors: list[SlurmPipelineExecutor], work: Path) -> list[StepJobs]:
    """Submit the chain (launching the last executor launches every one it depends on) and record
    it in ``work/slurm_jobs.json``. Raises :class:`DataError` when sbatch refuses a job (naming the
    jobs it had already accepted: they stay queued, and a re-run waits for them)."""
    steps = [StepJobs(_step_name(ex), ex.tasks, ex.get_incomplete_ranks()) for ex in executors]
    try:
        executors[-1].run()
    except subprocess.CalledProcessError as err:
        accepted = ",".join(j for s in _record(steps, executors, work) for j in s.job_ids)
        raise DataError(f"sbatch failed ({err}); see sbatch's message above. Scripts are under "
                        f"{work / 'logs'}/*/launch_script.slurm"
                        + (f". Jobs {accepted} were submitted before it (scancel them, or let them run: "
                           "a re-run resubmits only what they did not finish)" if accepted else "")) from None
    return _record(steps, executors, work)


def _record(steps: list[StepJobs], executors: list[SlurmPipelineExecutor], work: Path) -> list[StepJobs]:
    for step, ex in zip(steps, executors):
        step.job_ids = list(getattr(ex.job_id_retriever, "ids", []))
        if not step.job_ids:
            step.ranks = []
    tmp = work / f".{JOBS_FILE}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps({"submitted": time.time(), "steps": [asdict(s) for s in steps]}, indent=2),
                   encoding="utf-8")
    os.replace(tmp, _jobs_file(work))
    return steps


def wait(steps: list[StepJobs], first_poll_s: float = 1.0, max_poll_s: float = 30.0, retries: int = 5) -> None:
    """Block until none of the submitted jobs is queued or running: ``squeue`` every 1 s plus a
    tenth of the time waited so far, at most every 30 s (so the wait overshoots the run's end by at
    most ~10 %). Raises :class:`DataError` when ``squeue`` fails ``retries`` times in a row."""
    ids = [j for s in steps for j in s.job_ids]
    start, failures = time.monotonic(), 0
    while True:
        try:
            if not queued(ids):
                return
            failures = 0
        except DataError:
            failures += 1
            if failures >= retries:
                raise
        time.sleep(min(max_poll_s, first_poll_s + 0.1 * (time.monotonic() - start)))
