"""Fixtures for the Slurm launcher tests: a live localhost cluster and a `midm` runner.

The cluster fixture is session-scoped (daemons start once, ~1 s) and its finalizer stops the
daemons by PID whether or not the tests passed.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TEST_DATA
from tests.slurm.cluster import HERE, LocalSlurm, SlurmUnavailable, ensure_installed


@pytest.fixture(scope="session")
def slurm_installed() -> None:
    try:
        ensure_installed()
    except SlurmUnavailable as err:
        if os.environ.get("CI"):  # CI runs as root with apt: a missing Slurm there is a failure, not a skip
            pytest.fail(str(err))
        pytest.skip(str(err))


@pytest.fixture(scope="session")
def slurm(slurm_installed, tmp_path_factory) -> LocalSlurm:
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def offline_slurm_conf(slurm_installed, tmp_path_factory) -> Path:
    """A slurm.conf without daemons: enough for `scontrol show hostnames` inside rendered scripts."""
    conf = tmp_path_factory.mktemp("conf") / "slurm.conf"
    text = (HERE / "slurm.conf.in").read_text()
    for key, value in {"CTLD_PORT": 1, "SLURMD_PORT": 2, "DIR": conf.parent, "MUNGE_SOCKET": conf.parent / "m",
                       "NODE": "localhost"}.items():
        text = text.replace(f"@{key}@", str(value))
    conf.write_text(text)
    return conf


def midm(args: list[str], env: dict[str, str] | None = None, cwd: Path | None = None,
         check: bool = True) -> subprocess.CompletedProcess:
    """Run the real CLI (`python -m midm …`) in a subprocess."""
    env = {**(env or os.environ), "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "midm", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"midm {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def posttrain_data(chat_tokenizer_dir, tmp_path_factory) -> Path:
    """A workspace with real `midm data sft` and `midm data prefs` outputs, sft256/ and prefs256/ (~1 s)."""
    from midm.cli import main as midm_main

    root = tmp_path_factory.mktemp("posttrain")
    for tool, src, out in (("sft", "sft/chatbot.jsonl", "sft256"), ("prefs", "prefs/forms.jsonl", "prefs256")):
        assert midm_main(["data", tool, str(TEST_DATA / src), str(root / out), "--tokenizer", str(chat_tokenizer_dir),
                          "--seq-length", "256"]) == 0
    return root
