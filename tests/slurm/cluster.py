"""A real one-node Slurm cluster on localhost: munged, slurmctld and slurmd from tests/slurm/.

Debian's ``slurm-wlm`` and ``munge`` are installed with apt-get when absent — only in CI or when
asked (``MIDM_TEST_INSTALL_SLURM=1``): a test run never installs system packages on its own.
Everything the daemons write — state, spool, logs, the munge socket and key, the pid files —
lives in one temporary directory, and :meth:`LocalSlurm.stop` ends exactly the processes this
object started, by the PIDs in their pid files.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ("slurm-wlm", "munge")
DAEMONS = ("slurmctld", "slurmd", "munged")
FINAL_STATES = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL",
                "DEADLINE", "PREEMPTED"}


class SlurmUnavailable(RuntimeError):
    """Slurm cannot be installed or started here (not root, no apt-get …); tests skip with this."""


def ensure_installed() -> None:
    if all(shutil.which(exe) for exe in ("slurmctld", "slurmd", "sbatch", "munged")):
        return
    if not (os.environ.get("CI") or os.environ.get("MIDM_TEST_INSTALL_SLURM") == "1"):
        raise SlurmUnavailable("slurm-wlm/munge are not installed; set MIDM_TEST_INSTALL_SLURM=1 to let the tests "
                               "apt-get install them (CI does), or install them yourself")
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SlurmUnavailable("slurm-wlm/munge are not installed and cannot be apt-get installed here "
                               "(needs root and apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES]
    if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=False)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SlurmUnavailable(f"apt-get install {' '.join(PACKAGES)} failed: {proc.stderr[-2000:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_name() -> str:
    """The short hostname when it resolves (jobs use it as MASTER_ADDR), else ``localhost``."""
    name = socket.gethostname().split(".")[0]
    try:
        socket.gethostbyname(name)
        return name
    except OSError:
        return "localhost"


class LocalSlurm:
    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.node = _node_name()
        self.munge_socket = root / "munge" / "munge.socket"
        self.pids: dict[str, int] = {}

    @property
    def env(self) -> dict[str, str]:
        """Environment for client commands (and, through sbatch, for the jobs)."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float = 30.0) -> None:
        for sub in ("state", "spool", "log", "munge"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        text = (HERE / "slurm.conf.in").read_text()
        for key, value in {"CTLD_PORT": _free_port(), "SLURMD_PORT": _free_port(), "DIR": self.root,
                           "MUNGE_SOCKET": self.munge_socket, "NODE": self.node}.items():
            text = text.replace(f"@{key}@", str(value))
        self.conf.write_text(text)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        munge = self.root / "munge"
        self._daemon("munged", ["munged", "--force", f"--socket={self.munge_socket}", f"--key-file={key}",
                                f"--pid-file={munge / 'munged.pid'}", f"--log-file={munge / 'munged.log'}",
                                f"--seed-file={munge / 'seed'}"], munge / "munged.pid")
        self._daemon("slurmctld", ["slurmctld", "-f", str(self.conf)], self.root / "slurmctld.pid")
        self._daemon("slurmd", ["slurmd", "-f", str(self.conf), "-N", self.node], self.root / "slurmd.pid")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.run(["sinfo", "-h", "-n", self.node, "-o", "%T"], check=False).stdout.strip()
            if out.startswith("idle"):
                return
            time.sleep(0.3)
        raise RuntimeError(f"slurm node {self.node} did not become idle in {timeout:.0f} s\n{self.logs()}")

    def _daemon(self, name: str, argv: list[str], pid_file: Path) -> None:
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{name} failed to start (exit {proc.returncode}): {proc.stderr}\n{self.logs()}")
        for _ in range(50):  # the daemons fork; the pid file appears right after
            if pid_file.exists() and pid_file.read_text().strip():
                self.pids[name] = int(pid_file.read_text().strip())
                return
            time.sleep(0.1)
        raise RuntimeError(f"{name} started but wrote no pid file {pid_file}\n{self.logs()}")

    def stop(self) -> None:
        """Cancel leftover jobs, then end the daemons we started, by PID (TERM, then KILL)."""
        if "slurmctld" in self.pids:
            jobs = self.run(["squeue", "-h", "-o", "%A"], check=False).stdout.split()
            if jobs:
                self.run(["scancel", *sorted(set(jobs))], check=False)
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and self.run(["squeue", "-h"], check=False).stdout.strip():
                    time.sleep(0.3)
        for name in DAEMONS:
            pid = self.pids.pop(name, None)
            if pid is None:
                continue
            _terminate(pid)

    # ---- client helpers ---------------------------------------------------------------------
    def run(self, argv: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, check=check, **kwargs)

    def job(self, job_id: str) -> dict[str, str]:
        out = self.run(["scontrol", "show", "job", "-o", job_id], check=False).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def wait_state(self, job_id: str, states: set[str], timeout: float) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        info: dict[str, str] = {}
        while time.monotonic() < deadline:
            info = self.job(job_id)
            if info.get("JobState") in states:
                return info
            time.sleep(0.3)
        raise TimeoutError(f"job {job_id} not in {sorted(states)} after {timeout:.0f} s: {info}\n{self.logs()}")

    def wait_done(self, job_id: str, timeout: float) -> dict[str, str]:
        return self.wait_state(job_id, FINAL_STATES, timeout)

    def wait_array(self, job_id: str, count: int, timeout: float) -> list[dict[str, str]]:
        """Wait until all ``count`` elements of array job ``job_id`` have ended; their records by index."""
        deadline = time.monotonic() + timeout
        records: list[dict[str, str]] = []
        while time.monotonic() < deadline:
            out = self.run(["scontrol", "show", "job", "-o", job_id], check=False).stdout
            records = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines() if line.strip()]
            done = [r for r in records if r.get("JobState") in FINAL_STATES and r.get("ArrayTaskId", "").isdigit()]
            if len(done) == count:
                return sorted(done, key=lambda r: int(r["ArrayTaskId"]))
            time.sleep(0.3)
        raise TimeoutError(f"array job {job_id} not finished after {timeout:.0f} s: {records}\n{self.logs()}")

    def logs(self, lines: int = 15) -> str:
        out = []
        for path in (self.root / "log" / "slurmctld.log", self.root / "log" / "slurmd.log"):
            if path.exists():
                tail = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {path.name} ---\n" + "\n".join(tail))
        return "\n".join(out)


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie left for a non-reaping init counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _terminate(pid: int, timeout: float = 10.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
