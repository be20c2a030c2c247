"""Fixtures for training-core tests: a byte-level corpus prefix and a `midm` subprocess runner.

Training runs go through the real CLI in subprocesses (plain or under torchrun with gloo), which
keeps Megatron's process-global parallel state out of the pytest process.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="session")
def byte_prefix(tmp_path_factory) -> str:
    from tests.megatron_ext.byte_data import write_byte_prefix

    return write_byte_prefix(tmp_path_factory.mktemp("data"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def midm_cmd(args: list[str], nproc: int = 1) -> list[str]:
    if nproc == 1:
        return [sys.executable, "-m", "midm", *args]
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}", f"--master_port={free_port()}",
            "-m", "midm", *args]


def run_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    env.pop("RANK", None)
    env.pop("WORLD_SIZE", None)
    return env


def run_midm(args: list[str], nproc: int = 1, check: bool = True, timeout: int = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(midm_cmd(args, nproc), cwd=REPO, env=run_env(), capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"midm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n"
                             f"{proc.stderr[-6000:]}")
    return proc


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def losses(run_dir: Path) -> list[float]:
    return [m["loss"] for m in read_metrics(run_dir)]
