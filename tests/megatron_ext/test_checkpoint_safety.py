"""Checkpoints under attack and damage, through the real CLI: a pickle payload in `.metadata`, flipped
bits, truncated/missing files, a full disk and a file-size limit. One tiny run (4 steps, saves at 2
and 4) provides the checkpoints; each test damages a copy."""
from __future__ import annotations

import io
import json
import os
import pickle
import resource
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.megatron_ext.byte_data import VOCAB
from tests.megatron_ext.conftest import losses, midm_cmd, run_env, run_midm


def tiny_args(prefix: str, run_dir: Path, steps: int = 4, *extra: str) -> list[str]:
    return ["train", "--recipe", "tiny", "--set", f"data.blend={prefix}", "--set", f"model.vocab_size={VOCAB}",
            "--set", f"logging.dir={run_dir.parent}", "--set", f"logging.run_name={run_dir.name}",
            "--set", f"train.steps={steps}", "--set", "train.eval_interval=2", "--set", "checkpoint.save_interval=2",
            "--set", "logging.tensorboard=false", *extra]


@pytest.fixture(scope="module")
def saved(byte_prefix, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("ckpt") / "saved"
    run_midm(tiny_args(byte_prefix, run_dir))
    return run_dir


def copy_run(saved: Path, dest: Path) -> Path:
    """A new run directory holding a copy of the saved checkpoints (``dest/checkpoints``)."""
    shutil.copytree(saved / "checkpoints", dest / "checkpoints")
    return dest


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def payload(metadata: Path, marker: Path) -> bytes:
    """`.metadata` prefixed with a pickle that creates ``marker`` (os.mkdir) and then unpickles the real
    Metadata: plain ``pickle.load`` runs it and still returns a valid checkpoint index."""
    original = metadata.read_bytes()
    assert original[:2] == b"\x80\x04"
    return b"\x80\x04" + b"cos\nmkdir\n(V" + str(marker).encode() + b"\ntR0" + original[2:]


def rehash(iter_dir: Path, name: str) -> None:
    """Update manifest.json for a rewritten file, as someone who tampers on purpose would."""
    import xxhash

    manifest = json.loads((iter_dir / "manifest.json").read_text())
    data = (iter_dir / name).read_bytes()
    manifest["files"][name] = {"bytes": len(data), "hash": xxhash.xxh3_128(data).hexdigest()}
    (iter_dir / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.slow
def test_pickle_payload_in_metadata_is_refused_and_never_runs(saved, byte_prefix, tmp_path):
    from megatron_ext.checkpoint_safety import MetadataUnpickler, UnsafeCheckpointError

    meta = saved / "checkpoints" / "iter_0000004" / ".metadata"
    # the payload is real: plain pickle runs it and still yields the checkpoint's Metadata
    plain_marker = tmp_path / "plain_pickle_ran"
    assert type(pickle.loads(payload(meta, plain_marker))).__name__ == "Metadata" and plain_marker.exists()

    marker = tmp_path / "payload_ran"
    bad = copy_run(saved, tmp_path / "bad") / "checkpoints"
    (bad / "iter_0000004" / ".metadata").write_bytes(payload(meta, marker))
    rehash(bad / "iter_0000004", ".metadata")
    with pytest.raises(UnsafeCheckpointError, match="refusing to unpickle os.mkdir"):
        MetadataUnpickler(io.BytesIO(payload(meta, marker)), ".metadata").load()
    proc = run_midm(["convert", "to-hf", "--checkpoint", str(bad), "--output", str(tmp_path / "hf")], check=False)
    assert proc.returncode == 2 and "refusing to unpickle os.mkdir" in last_line(proc.stderr), proc.stderr[-2000:]
    proc = run_midm(tiny_args(byte_prefix, tmp_path / "student", 2, "--set", f"checkpoint.load={bad}"), check=False)
    assert proc.returncode == 2 and "refusing to unpickle os.mkdir" in last_line(proc.stderr), proc.stderr[-2000:]
    assert not marker.exists() and not (tmp_path / "hf").exists()


def _flip_embedding_bit(iter_dir: Path) -> str:
    """Flip one bit inside the stored word-embedding tensor; returns the shard's file name."""
    from megatron_ext.checkpoint_safety import read_metadata

    metadata = read_metadata(iter_dir)
    index, info = next((i, s) for i, s in metadata.storage_data.items()
                       if i.fqn == "embedding.word_embeddings.weight")
    shard = iter_dir / info.relative_path
    data = bytearray(shard.read_bytes())
    data[info.offset + info.length // 2] ^= 0x10
    shard.write_bytes(bytes(data))
    return info.relative_path


@pytest.mark.slow
def test_flipped_bit_is_named_and_resume_auto_falls_back(saved, byte_prefix, tmp_path):
    from megatron_ext import checkpoint as ckpt

    run_dir = copy_run(saved, tmp_path / "flipped")
    shard = _flip_embedding_bit(run_dir / "checkpoints" / "iter_0000004")
    with pytest.raises(ckpt.DamagedCheckpointError, match=f"{shard}: checksum mismatch"):
        ckpt.check(run_dir / "checkpoints")  # an explicit path (to-hf, checkpoint.load, --resume PATH) fails
    proc = run_midm(tiny_args(byte_prefix, run_dir))  # --resume auto
    assert f"resuming from iter_0000002, the newest intact checkpoint (skipped iter_0000004 ({shard}: checksum " \
           "mismatch" in proc.stdout, proc.stdout[-3000:]
    assert losses(run_dir) == losses(saved)[2:]  # steps 3-4 recomputed from iter_0000002, bit for bit
    assert (run_dir / "checkpoints" / "latest").read_text() == "iter_0000004"
    ckpt.check(run_dir / "checkpoints")  # re-saved whole
    assert not (run_dir / "midm.lock").exists()  # released on exit


DAMAGE = {
    "truncated shard": (lambda d: os.truncate(d / "iter_0000004" / "__0_0.distcp", 5_000_000),
                        "__0_0.distcp: truncated: 5,000,000 bytes, manifest.json says"),
    "truncated shard, no manifest": (lambda d: (os.truncate(d / "iter_0000004" / "__0_0.distcp", 5_000_000),
                                                (d / "iter_0000004" / "manifest.json").unlink()),
                                     "__0_0.distcp: truncated: 5,000,000 bytes, .metadata records data up to"),
    "missing trainer_state.json": (lambda d: (d / "iter_0000004" / "trainer_state.json").unlink(),
                                   "trainer_state.json: missing"),
    "empty latest": (lambda d: (d / "latest").write_text(""), "latest: empty"),
    "missing metadata.json": (lambda d: (d / "iter_0000004" / "metadata.json").unlink(), "metadata.json: missing"),
    "garbage .metadata": (lambda d: ((d / "iter_0000004" / ".metadata").write_bytes(b"\x80\x04garbage"),
                                     rehash(d / "iter_0000004", ".metadata")),
                          ".metadata: not a readable checkpoint index"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_checkpoint_is_one_line_naming_the_file(saved, tmp_path, kind):
    from megatron_ext import checkpoint as ckpt

    root = copy_run(saved, tmp_path / "damaged") / "checkpoints"
    damage, expected = DAMAGE[kind]
    damage(root)
    with pytest.raises(ckpt.DamagedCheckpointError) as info:
        ckpt.check(root, need_trainer_state=True)
    message = str(info.value)
    assert expected in message and "\n" not in message and info.value.exit_code == 2
    # --resume auto falls back to the newest candidate that passes (an empty `latest` damages no iter dir)
    intact = next(c for c in ckpt.integrity.resume_candidates(root, ckpt.LATEST) if _passes(ckpt, c))
    assert intact.name == ("iter_0000004" if kind == "empty latest" else "iter_0000002")


def _passes(ckpt, iter_dir: Path) -> bool:
    try:
        ckpt.check(iter_dir, need_trainer_state=True)
    except ckpt.DamagedCheckpointError:
        return False
    return True


@pytest.mark.slow
def test_a_save_that_hits_the_file_size_limit_cleans_up(saved, byte_prefix, tmp_path):
    """A write refused by the OS mid-save (EFBIG from RLIMIT_FSIZE: the 10 MB shard does not fit under
    4 MiB, the small JSON/metrics files do): one line, the partial directory removed, `latest` kept."""
    run_dir = copy_run(saved, tmp_path / "limited")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))

    proc = subprocess.run(midm_cmd(tiny_args(byte_prefix, run_dir, 6)), cwd=REPO, env=run_env(), capture_output=True,
                          text=True, timeout=300, preexec_fn=limit)
    line = last_line(proc.stderr)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "file-size limit (ulimit -f) of 4.0 MiB while saving checkpoint iter_0000006" in line, line
    assert "a checkpoint needs about 11.3 MiB" in line and "`latest` still points to iter_0000004" in line
    ckpts = run_dir / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir()) == ["iter_0000002", "iter_0000004", "latest"]
    assert (ckpts / "latest").read_text() == "iter_0000004" and not (run_dir / "midm.lock").exists()


def _user_namespaces() -> bool:
    probe = subprocess.run(["unshare", "-Urm", "true"], capture_output=True) if shutil.which("unshare") else None
    return probe is not None and probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _user_namespaces(), reason="needs `unshare -Urm` (user namespaces) to mount a small tmpfs")
def test_full_disk_is_said_before_the_save(byte_prefix, tmp_path):
    """A real 16 MiB filesystem (tmpfs in a private mount namespace, no root needed): the first 10 MB
    checkpoint fits, the second does not — refused before writing, with the size it needs."""
    mnt, out = tmp_path / "mnt", tmp_path / "out"
    mnt.mkdir()
    run_dir = mnt / "run"
    cmd = shlex.join(midm_cmd(tiny_args(byte_prefix, run_dir)))
    script = (f"mount -t tmpfs -o size=16m tmpfs {mnt} && {{ {cmd} 2> {tmp_path}/stderr; echo $? > {tmp_path}/rc; "
              f"cp -r {run_dir}/checkpoints {out}; }}")
    subprocess.run(["unshare", "-Urm", "sh", "-c", script], cwd=REPO, env=run_env(), timeout=300, check=True)
    line = last_line((tmp_path / "stderr").read_text())
    assert (tmp_path / "rc").read_text().strip() == "1", line
    assert line.startswith("midm train: error: no space left for checkpoint iter_0000004") and "needs about 11.3 MiB" in line
    assert "(nothing written; `latest` still points to iter_0000002)" in line
    assert sorted(p.name for p in out.iterdir()) == ["iter_0000002", "latest"]


@pytest.mark.slow
def test_second_trainer_on_a_run_directory_fails_at_once(byte_prefix, tmp_path):
    """A live holder of the run directory's lock (the RunLock every trainer takes, held here by a small
    process so the box's two cores go to the trainer under test): the trainer exits 2 at start-up naming
    the holder's host and PID, having changed nothing in the run directory — not even the metrics of a
    holder that has not checkpointed yet (which a start of its own would keep as metrics.jsonl.1.prev);
    once the holder is killed -9 its lock is stale and taken over."""
    from megatron_ext.run_lock import LOCK_NAME, RunLock

    run_dir = tmp_path / "shared"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 5.0}) + "\n" for s in (1, 2)))
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    hold = f"import time; from megatron_ext.run_lock import RunLock; RunLock({str(run_dir)!r}).acquire(); time.sleep(600)"
    holder = subprocess.Popen([sys.executable, "-c", hold], cwd=REPO, env=run_env())
    try:
        lock = run_dir / LOCK_NAME
        deadline = time.monotonic() + 60
        while not lock.exists() and holder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lock.exists()
        second = run_midm(tiny_args(byte_prefix, run_dir), check=False)
        line = last_line(second.stderr)
        assert second.returncode == 2 and f"host {socket.gethostname()}, PID {holder.pid}" in line, line
        assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.name != LOCK_NAME} == before
        assert holder.poll() is None
    finally:
        holder.kill()
        holder.wait()
    assert lock.exists()  # kill -9 leaves the file …
    RunLock(run_dir).acquire().release()  # … but its holder is dead: stale, taken over at once


def test_space_errors_are_told_apart(tmp_path):
    import errno

    from megatron_ext.checkpoint_space import explain

    def chained(cause: BaseException) -> RuntimeError:
        try:
            raise RuntimeError("Worker failure") from cause
        except RuntimeError as err:
            return err

    full = explain(chained(OSError(errno.ENOSPC, "No space left on device")), tmp_path, "iter_0000008", 1 << 30,
                   "iter_0000006")
    assert str(full).startswith("no space left on device while saving checkpoint iter_0000008")
    assert "needs about 1.0 GiB" in str(full) and "`latest` still points to iter_0000006" in str(full)
    quota = explain(OSError(errno.EDQUOT, "Disk quota exceeded"), tmp_path, "iter_0000008", 10, None)
    assert str(quota).startswith("disk quota exceeded") and "no earlier checkpoint" in str(quota)
    assert explain(ValueError("a bug, not the disk"), tmp_path, "iter_0000008", 10, None) is None


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_torch_readers_are_replaced_in_every_loading_process(saved, tmp_path):
    """Importing megatron_ext.checkpoint routes torch's own readers (used inside dist_checkpointing.load)
    through the restricted ones: a payload in .metadata or in a byte item is refused, plain data loads."""
    import torch
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
    from torch.distributed.checkpoint.metadata import MetadataIndex
    from torch.distributed.checkpoint.planner import LoadItemType, ReadItem

    from megatron_ext import checkpoint as ckpt

    marker = tmp_path / "payload_ran"
    bad = copy_run(saved, tmp_path / "bad") / "checkpoints" / "iter_0000004"
    (bad / ".metadata").write_bytes(payload(saved / "checkpoints" / "iter_0000004" / ".metadata", marker))
    with pytest.raises(ckpt.UnsafeCheckpointError, match="os.mkdir"):
        FileSystemReader(str(bad)).read_metadata()
    assert type(FileSystemReader(str(saved / "checkpoints" / "iter_0000004")).read_metadata()).__name__ == "Metadata"

    planner = DefaultLoadPlanner(flatten_state_dict=False)
    planner.state_dict = {}
    item = ReadItem(LoadItemType.BYTE_IO, MetadataIndex("rng"), torch.Size([0]), MetadataIndex("rng"),
                    torch.Size([0]), torch.Size([0]))
    for obj, ok in (({"torch": torch.arange(3, dtype=torch.uint8)}, True), (_Payload(marker), False)):
        buf = io.BytesIO()
        torch.save(obj, buf)
        buf.seek(0)
        if ok:
            planner.load_bytes(item, buf)
            assert planner.state_dict["rng"]["torch"].tolist() == [0, 1, 2]
        else:
            with pytest.raises(ckpt.UnsafeCheckpointError, match="'rng' is not plain data"):
                planner.load_bytes(item, buf)
    assert not marker.exists()
