"""Submit a rendered script with ``sbatch`` and keep what is needed to reproduce the job.

The script goes to sbatch on stdin (Slurm stores it; a requeued job reruns that stored copy), so
nothing is written before the submission succeeds. Afterwards the run's log directory holds, next
to ``<job name>-<job id>.out``: the exact script (``.sbatch``), the resolved recipe (``.recipe.json``)
and a small submission record (``.submit.json``).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from midm.errors import MidmError
from slurm.render import Rendered


class SubmitError(MidmError, RuntimeError):
    """sbatch is missing or refused the job; the message carries sbatch's own words."""


@dataclass
class Submission:
    job_id: str  # the (last) job: a chain's summary job
    script_path: Path
    recipe_path: Path
    record_path: Path
    log: str  # the job's log file (``*`` stands for the task id of an array job)
    job_ids: list[str] = field(default_factory=list)  # every job, in submission order


def sbatch_argv(sbatch: str = "sbatch") -> list[str]:
    return [sbatch, "--parsable"]


def _sbatch(exe: str, script: str, extra: list[str]) -> str:
    proc = subprocess.run([*sbatch_argv(exe), *extra], input=script, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SubmitError(f"sbatch failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
    job_id = proc.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise SubmitError(f"could not read a job id from sbatch's output {proc.stdout!r}")
    return job_id


def _submit_chain(exe: str, rendered: Rendered) -> list[str]:
    """Submit a chain's jobs in order, each ``--dependency=afterok`` on its predecessor; on a refusal
    cancel what was already submitted (a half chain would wait for nothing)."""
    ids: list[str] = []
    try:
        for job in rendered.jobs:
            dep = [f"--dependency=afterok:{ids[job.after]}"] if job.after is not None else []
            ids.append(_sbatch(exe, job.script, dep))
    except SubmitError:
        scancel = shutil.which("scancel")
        if ids and scancel:
            subprocess.run([scancel, *ids], capture_output=True, check=False)
        raise
    return ids


def submit(rendered: Rendered, stage: str, sbatch: str = "sbatch") -> Submission:
    exe = shutil.which(sbatch)
    if exe is None:
        raise SubmitError(f"{sbatch!r} not found on PATH: run `midm slurm submit` on a Slurm login node "
                          "(or use `midm slurm render` and submit the script yourself)")
    # Slurm does not create the directory of --output; a missing one fails the job silently.
    rendered.log_dir.mkdir(parents=True, exist_ok=True)
    job_ids = _submit_chain(exe, rendered) if rendered.jobs else [_sbatch(exe, rendered.script, [])]
    job_id = job_ids[-1]
    base = rendered.log_dir / f"{rendered.job_name}-{job_id}"
    script_path = base.with_name(base.name + ".sbatch")
    recipe_path = base.with_name(base.name + ".recipe.json")
    record_path = base.with_name(base.name + ".submit.json")
    script_path.write_text(rendered.script)
    for job, jid in zip(rendered.jobs, job_ids):
        base.with_name(f"{job.job_name}-{jid}.sbatch").write_text(job.script)
    recipe_path.write_text(json.dumps(rendered.recipe_dict, indent=2) + "\n")
    log = rendered.log_path(job_id)
    record = {"job_id": job_id, "stage": stage, "job_name": rendered.job_name, "submitted_at": time.time(),
              "log": log, "script": str(script_path), "recipe": str(recipe_path), "run_dir": str(rendered.run_dir)}
    if rendered.jobs:
        record["chain"] = [{"step": j.step, "job_id": jid, "job_name": j.job_name, "tasks": j.tasks,
                            "after": job_ids[j.after] if j.after is not None else None}
                           for j, jid in zip(rendered.jobs, job_ids)]
    record_path.write_text(json.dumps(record, indent=2) + "\n")
    return Submission(job_id, script_path, recipe_path, record_path, log, job_ids)
