"""Disk space for checkpoints: check before a save, explain a save that ran out.

A checkpoint's size is known before it is written: the bytes of every tensor shard that is its
"main replica" (Megatron-Core's ``is_main_replica``; each global shard is written once, whatever
the DP/TP/PP layout), summed over ranks. :func:`check_free` compares it with the free space the
filesystem reports (``statvfs``, so quotas that it does not report are caught only when the write
fails) and refuses before anything is written. When a write fails anyway (another job filled the
disk, a quota, a file-size limit), :func:`explain` turns the low-level error — ``OSError`` with
``ENOSPC``/``EDQUOT``/``EFBIG``, or torch's ``[enforce fail at inline_container.cc:…] unexpected pos``
which has lost its errno — into one line saying what happened and how much a checkpoint needs.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import shutil
from pathlib import Path
from typing import Iterator

from megatron_ext.checkpoint_integrity import CheckpointError

MARGIN = 1.02  # the index, JSON files and per-tensor headers on top of the tensor bytes
SLACK = 1 << 20

_REASONS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
            errno.EFBIG: "file too large for this process's file-size limit (ulimit -f)"}
_LOST_ERRNO = ("unexpected pos", "file write failed", "No space left")


class CheckpointSpaceError(CheckpointError):
    """A checkpoint does not fit where it is being saved. Exit status 1: the environment, not the input."""

    exit_code = 1


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n} B"


def local_shard_bytes(sharded_state: dict) -> int:
    """Bytes of the tensor shards this rank holds as main replica (``ShardedTensor`` and the factories that
    build them, e.g. SwiGLU's split ``linear_fc1``; ``ShardedObject`` byte items are small and not counted)."""
    from megatron.core.dist_checkpointing.dict_utils import nested_values
    from megatron.core.dist_checkpointing.mapping import ShardedTensor, ShardedTensorFactory, is_main_replica

    total = 0
    for value in nested_values(sharded_state):
        if isinstance(value, (ShardedTensor, ShardedTensorFactory)) and value.data is not None \
                and is_main_replica(value.replica_id):
            numel = value.data.numel()  # a ShardedTensor's data is already its (flattened) local piece
            if isinstance(value, ShardedTensorFactory) and value.flattened_range is not None:
                numel = value.flattened_range.stop - value.flattened_range.start
            total += numel * value.data.element_size()
    return total


def free_bytes(path: Path) -> int | None:
    """Free bytes for an unprivileged writer at ``path`` (its nearest existing parent), None if unknown."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def needed_bytes(tensor_bytes: int) -> int:
    return int(tensor_bytes * MARGIN) + SLACK


def check_free(root: Path, name: str, needed: int, free: int | None, latest: str | None) -> None:
    """Raise CheckpointSpaceError when ``free`` (bytes, None = unknown) cannot hold ``needed``."""
    if free is not None and free < needed:
        raise CheckpointSpaceError(
            f"no space left for checkpoint {name} in {root}: it needs about {human(needed)}, {human(free)} free "
            f"(nothing written; {_latest(latest)}). Free space or point checkpoint.dir elsewhere, then resume "
            "with --resume auto")


def _latest(latest: str | None) -> str:
    return f"`latest` still points to {latest}" if latest else "no earlier checkpoint"


def _walk(err: BaseException):
    """The error, its causes/contexts and, for torch's CheckpointException, each rank's failure."""
    seen, todo = set(), [err]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo += [e.__cause__, e.__context__]
        failures = getattr(e, "failures", None)
        if isinstance(failures, dict):
            todo += [f[0] if isinstance(f, tuple) else f for f in failures.values()]


@contextlib.contextmanager
def writer_errors() -> Iterator[list[str]]:
    """Collect what Megatron-Core's checkpoint writers log at WARNING and above during a save.

    Its async file writer (``strategies/filesystem_async.py``) logs a worker's exception text — e.g.
    ``unexpected pos 704 vs 598`` — and re-raises only ``error: <class 'RuntimeError'>``.
    """
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = _Collect(logging.WARNING)
    logger = logging.getLogger("megatron.core.dist_checkpointing")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def _file_size_limit() -> int | None:
    try:
        import resource
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else soft


def explain(err: BaseException, root: Path, name: str, needed: int, latest: str | None,
            logged: list[str] = ()) -> CheckpointSpaceError | None:
    """A one-line CheckpointSpaceError for a save that failed for lack of space, else None.

    ``logged``: the writers' messages (:func:`writer_errors`). The errno decides when it survived;
    otherwise a lost-errno write failure is told apart by the process's file-size limit and the
    free space left.
    """
    reason = None
    texts = list(logged)
    for e in _walk(err):
        if isinstance(e, OSError) and e.errno in _REASONS:
            reason = _REASONS[e.errno]
            break
        texts.append(str(e))
    free = free_bytes(root)
    short = free is not None and free < needed
    if reason is None:
        limit = _file_size_limit()
        if any(marker in t for t in texts for marker in _LOST_ERRNO):
            if limit is not None and limit < needed:
                reason = f"{_REASONS[errno.EFBIG]} of {human(limit)}"
            elif short:
                reason = _REASONS[errno.ENOSPC]
            else:
                reason = "a checkpoint file could not be written (torch: unexpected pos; disk or quota full)"
        elif short:
            reason = _REASONS[errno.ENOSPC]
        else:
            return None
    free_text = f", {human(free)} free now" if free is not None else ""
    return CheckpointSpaceError(
        f"{reason} while saving checkpoint {name} in {root}: a checkpoint needs about {human(needed)}{free_text}; "
        f"removed the partial {name} ({_latest(latest)}). Free space or point checkpoint.dir elsewhere, then "
        "resume with --resume auto")
