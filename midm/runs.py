"""Running ``midm`` stages as subprocesses, the way a cluster job does: one shared runner.

Used by ``midm demo`` and the ``benchmarks/science_*`` scripts. Each call runs
``python -m midm ARGS`` with its output appended to a log file, optionally echoes selected lines,
requeues a run that exits 75 (checkpointed after SIGUSR1/SIGTERM, as the Slurm scripts do: it
resumes from its own checkpoint, so its curves stay those of one run) and raises
:class:`StageFailed` with the log's last lines otherwise. Torch-free.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

from midm.errors import MidmError

EXIT_REQUEUE = 75
REPO = Path(__file__).resolve().parents[1]


class StageFailed(MidmError, RuntimeError):
    """A ``midm`` sub-command exited non-zero; the message carries its command and log tail."""


def run_midm(args: list[str], log: Path, *, show: Callable[[str], bool] | None = None, prefix: str = "",
             env: dict[str, str] | None = None, nice: int | None = None, requeues: int = 3, tail: int = 15) -> None:
    """Run ``midm ARGS`` to completion, streaming its output (stdout + stderr) to ``log``.

    ``show(line)`` selects lines echoed to our stdout (prefixed with ``prefix``); ``nice`` lowers
    the priority; ``env`` adds variables. Raises ``StageFailed`` on a non-zero exit other than 75.
    """
    full_env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONWARNINGS="ignore", TOKENIZERS_PARALLELISM="false",
                    **(env or {}))
    cmd = [sys.executable, "-m", "midm", *args]
    if nice is not None:
        cmd = ["nice", "-n", str(nice), *cmd]
    log.parent.mkdir(parents=True, exist_ok=True)
    last: list[str] = []
    for attempt in range(requeues + 1):
        with log.open("a") as handle:
            handle.write(f"$ midm {' '.join(args)}\n")
            handle.flush()
            proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                    env=full_env, bufsize=1)
            for line in proc.stdout:
                handle.write(line)
                last = (last + [line.rstrip()])[-tail:]
                if show is not None and show(line):
                    print(f"{prefix}{line.rstrip()[:150]}", flush=True)
            proc.wait()
        if proc.returncode != EXIT_REQUEUE or attempt == requeues:
            break
        print(f"{prefix}midm {args[0]} was stopped by a signal (exit 75); resuming", flush=True)
    if proc.returncode != 0:
        raise StageFailed(f"`midm {' '.join(args[:3])} …` exited {proc.returncode} (log: {log}):\n  "
                          + "\n  ".join(last))
