"""One trainer per run directory: a lock file that names its holder.

Kind: an ``O_CREAT | O_EXCL`` lock file (``<dir>/midm.lock``) holding the holder's host, PID, boot
id and process start time, with a heartbeat (its mtime is refreshed every ``HEARTBEAT_S``). Why not
``fcntl``/``flock``: those locks are per node on Lustre mounted with ``localflock``, unavailable
on Lustre without ``flock``, and depend on the NFS lock manager; exclusive create is atomic on local
disks, NFSv3+/v4, Lustre and GPFS alike, and the file says who holds it — what the second trainer
must print.

Released on exit: :meth:`RunLock.release` (``Trainer.close``) and an ``atexit`` hook (a trainer
that fails after taking it). Stale after the holder dies:

* same host and boot: the PID is gone, or now belongs to a process with another start time;
* same host, another boot id: the machine rebooted;
* another host: no heartbeat for ``STALE_S`` (the holder's node died or was cut off; mtimes are
  set by the file server, so compare within a clock skew much smaller than ``STALE_S``).

A stale lock is broken by renaming it aside (atomic; of two trainers breaking it at once one wins
the rename, then both race fairly for the exclusive create). Torch-free.
"""
from __future__ import annotations

import atexit
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from midm.errors import MidmError

LOCK_NAME = "midm.lock"
HEARTBEAT_S = 15.0
STALE_S = 120.0


class RunLockedError(MidmError):
    """Another live process holds the run directory."""


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _start_time(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (/proc/PID/stat field 22); None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start_time: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        pass
    now = _start_time(pid)
    return start_time is None or now is None or now == start_time


def identity() -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "boot_id": _boot_id(),
            "start_time": _start_time(os.getpid()), "since": time.time(),
            "slurm_job_id": os.environ.get("SLURM_JOB_ID")}


class RunLock:
    """``RunLock(dir).acquire()`` or RunLockedError naming the holder; ``release()`` when done."""

    def __init__(self, directory: str | os.PathLike, heartbeat_s: float = HEARTBEAT_S, stale_s: float = STALE_S):
        self.directory = Path(directory)
        self.path = self.directory / LOCK_NAME
        self.heartbeat_s, self.stale_s = heartbeat_s, stale_s
        self.me = identity()
        self._stop = threading.Event()
        self._held = False

    # ---------------------------------------------------------------- holder checks
    def _read(self) -> tuple[dict[str, Any] | None, float | None]:
        try:
            mtime = self.path.stat().st_mtime
            return json.loads(self.path.read_text()), mtime
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError):  # being written right now, or garbage
            try:
                return {}, self.path.stat().st_mtime
            except FileNotFoundError:
                return None, None

    def _stale(self, holder: dict[str, Any], mtime: float) -> bool:
        if not holder:  # unreadable: stale only once nobody could still be writing it
            return time.time() - mtime > self.stale_s
        if holder.get("host") == self.me["host"]:
            if holder.get("boot_id") and self.me["boot_id"] and holder["boot_id"] != self.me["boot_id"]:
                return True
            return not _alive(int(holder.get("pid", -1)), holder.get("start_time"))
        return time.time() - mtime > self.stale_s

    # ---------------------------------------------------------------- acquire / release
    def acquire(self) -> "RunLock":
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder, mtime = self._read()
                if holder is None:
                    continue  # released meanwhile
                if not self._stale(holder, mtime):
                    raise RunLockedError(self._held_message(holder, mtime))
                self._break(holder)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(self.me))
                f.flush()
                os.fsync(f.fileno())
            self._held = True
            atexit.register(self.release)
            threading.Thread(target=self._beat, name="midm-run-lock", daemon=True).start()
            return self
        raise RunLockedError(f"could not take {self.path}: other processes keep taking and releasing it")

    def _break(self, holder: dict[str, Any]) -> None:
        aside = self.path.with_name(f"{LOCK_NAME}.stale.{self.me['host']}.{self.me['pid']}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return  # someone else broke it first
        try:
            moved = json.loads(aside.read_text())
        except (OSError, ValueError):
            moved = {}
        if moved and holder and moved != holder:  # a live lock was taken in between: put it back
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
        aside.unlink(missing_ok=True)

    def _held_message(self, holder: dict[str, Any], mtime: float) -> str:
        if not holder:
            return f"{self.directory} is being locked by another process right now ({self.path}); retry in a moment"
        job = f", Slurm job {holder['slurm_job_id']}" if holder.get("slurm_job_id") else ""
        age = time.time() - mtime
        return (f"{self.directory} is in use by another trainer: host {holder.get('host')}, PID {holder.get('pid')}"
                f"{job} (heartbeat {age:.0f} s ago). Two trainers on one run directory corrupt its checkpoints and "
                f"metrics: stop that one, or choose another logging.run_name / checkpoint.dir. If it is dead on "
                f"another host, the lock goes stale {self.stale_s:.0f} s after its last heartbeat "
                f"(or remove {self.path})")

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                os.utime(self.path)
            except OSError:
                return

    def release(self) -> None:
        """Remove the lock if this process still holds it (idempotent)."""
        if not self._held:
            return
        self._held = False
        self._stop.set()
        holder, _ = self._read()
        if holder and holder.get("host") == self.me["host"] and holder.get("pid") == self.me["pid"]:
            self.path.unlink(missing_ok=True)
        atexit.unregister(self.release)


def acquire_all(directories: list[Path]) -> list[RunLock]:
    """Lock each distinct directory (in order); on failure release those already taken and re-raise."""
    locks: list[RunLock] = []
    try:
        for d in dict.fromkeys(Path(x).resolve() for x in directories):
            locks.append(RunLock(d).acquire())
    except BaseException:
        for lock in locks:
            lock.release()
        raise
    return locks
