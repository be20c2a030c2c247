"""Local or Slurm execution of one pipeline phase, through datatrove's executors.

A filter run is a chain of phases (streaming stages, then the dedup barrier, then the
quality-cut barrier). Locally they run one after the other in this process; under Slurm each
step is a job array that depends (``afterok``) on the previous one, all submitted at once
(:mod:`data_prep.slurm_exec`; imported only for ``--executor slurm``).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SlurmOptions:
    partition: str | None = None      # None: the cluster's default partition (no directive)
    time: str = "24:00:00"
    cpus_per_task: int = 1
    mem_per_cpu_gb: int | None = None  # None: the cluster's DefMemPerCPU (no directive)
    max_array_size: int = 1001
    qos: str = ""
    job_name: str = "midm-data"
    venv_path: str | None = None
    sbatch_args: dict = field(default_factory=dict)
    wait: bool = False                # block until the submitted jobs have left the queue


@dataclass
class ExecOptions:
    kind: str = "local"               # local | slurm
    workers: int = -1                 # local parallel tasks (-1: min(tasks, cores))
    slurm: SlurmOptions = field(default_factory=SlurmOptions)


def default_venv_activate() -> str | None:
    """The running interpreter's venv ``activate`` script, so array tasks use the same environment."""
    activate = Path(sys.prefix) / "bin" / "activate"
    return str(activate) if activate.is_file() else None


def make_executor(pipeline: list, *, tasks: int, logging_dir: str, opts: ExecOptions, name: str,
                  depends=None):
    """One step's executor: ``tasks`` ranks of ``pipeline``, logs/completion markers in ``logging_dir``;
    under Slurm an array job named ``midm-data-<name>`` submitted after ``depends`` succeeded."""
    if opts.kind == "slurm":
        from data_prep.slurm_exec import JobIds, MidmSlurmExecutor, env_command

        s = opts.slurm
        venv = s.venv_path or default_venv_activate()
        return MidmSlurmExecutor(
            pipeline=pipeline, tasks=tasks, time=s.time, partition=s.partition or "", cpus_per_task=s.cpus_per_task,
            mem_per_cpu_gb=s.mem_per_cpu_gb, job_name=f"{s.job_name}-{name}", qos=s.qos,
            venv_path=venv, env_command=env_command(venv), sbatch_args=dict(s.sbatch_args),
            max_array_size=s.max_array_size, depends=depends, logging_dir=logging_dir, job_id_retriever=JobIds(),
            slurm_logs_folder=os.path.join(logging_dir, "slurm_logs"), requeue=False, mail_user=None,
        )
    workers = opts.workers if opts.workers > 0 else min(tasks, os.cpu_count() or 1)
    # forkserver, not fork: a forked worker inherits the caller's threads and native state (Kiwi's and
    # torch's thread pools, the progress poller, an xdist worker's I/O threads); one such worker died
    # mid-task and datatrove's Pool then waited forever for its rank. forkserver children start from a
    # clean server process and receive the pickled pipeline (as the Slurm path's array tasks do).
    from data_prep.local_exec import MidmLocalExecutor

    return MidmLocalExecutor(pipeline=pipeline, tasks=tasks, workers=min(workers, tasks),
                             logging_dir=logging_dir, start_method="forkserver")
