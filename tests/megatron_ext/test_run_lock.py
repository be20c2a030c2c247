"""The run-directory lock (torch-free): holder named, released, stale after its holder dies."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest

from megatron_ext.run_lock import LOCK_NAME, RunLock, RunLockedError, identity


def _write_holder(directory, **fields) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / LOCK_NAME).write_text(json.dumps({**identity(), **fields}))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_held_lock_names_its_holder_and_is_released(tmp_path):
    held = RunLock(tmp_path).acquire()
    with pytest.raises(RunLockedError, match=f"host {socket.gethostname()}, PID {os.getpid()}"):
        RunLock(tmp_path).acquire()
    held.release()
    assert not (tmp_path / LOCK_NAME).exists()
    RunLock(tmp_path).acquire().release()


def test_dead_holder_on_this_host_is_stale(tmp_path):
    _write_holder(tmp_path, pid=_dead_pid())
    RunLock(tmp_path).acquire().release()
    _write_holder(tmp_path, boot_id="an-earlier-boot")  # this very PID, but before a reboot
    RunLock(tmp_path).acquire().release()


def test_holder_on_another_host_is_stale_only_without_heartbeat(tmp_path):
    _write_holder(tmp_path, host="gpu-node-17", pid=4242)
    with pytest.raises(RunLockedError, match="host gpu-node-17, PID 4242"):
        RunLock(tmp_path).acquire()
    old = time.time() - 600
    os.utime(tmp_path / LOCK_NAME, (old, old))
    lock = RunLock(tmp_path, stale_s=120).acquire()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()


def test_heartbeat_keeps_the_lock_fresh_and_release_spares_another_holder(tmp_path):
    lock = RunLock(tmp_path, heartbeat_s=0.05).acquire()
    old = time.time() - 600
    os.utime(tmp_path / LOCK_NAME, (old, old))
    time.sleep(0.3)
    assert time.time() - (tmp_path / LOCK_NAME).stat().st_mtime < 5
    _write_holder(tmp_path, host="gpu-node-3", pid=7)  # someone broke and retook it meanwhile
    lock.release()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["host"] == "gpu-node-3"
