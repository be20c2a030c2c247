"""What the demo ran on, for the report's "Run" section: ``OUT/summaries/run.json``.

The machine (logical cores, the cores this process may use, torch's intra-op threads and
``OMP_NUM_THREADS``), the versions of the libraries the stages run on, the git commit and the command
that reproduces the run. Written by ``midm demo`` before its first stage.
"""
from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "megatron-core", "transformers", "datatrove", "lm_eval", "sentencepiece", "tokenizers")
REPO = Path(__file__).resolve().parents[1]


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True,
                           text=True, timeout=10).stdout.strip()
    return out.stdout.strip() + ("+local changes" if dirty else "")


def run_environment(argv: list[str]) -> dict:
    """``{"machine": {...}, "versions": {...}, "commit", "command"}``; ``argv`` are ``midm demo``'s arguments.

    ``torch_threads`` is what ``torch.get_num_threads()`` returns in a fresh process with this
    environment (each training stage is such a process).
    """
    import torch  # the training stages' thread count is torch's default for this environment

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    machine = {"platform": platform.platform(terse=True), "processor": platform.machine(),
               "logical_cores": os.cpu_count(), "usable_cores": usable, "torch_threads": torch.get_num_threads(),
               "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")}
    versions = {"python": platform.python_version(), **{name: _version(name) for name in PACKAGES}}
    command = " ".join(["midm", "demo", *(shlex.quote(a) for a in argv)])
    return {"machine": machine, "versions": versions, "commit": _git_commit(), "command": command.strip(),
            "python_executable": sys.executable}
