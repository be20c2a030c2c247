"""What a training start decides from the run directory before any process group starts (torch-free).

* :func:`resume_hint` — the checkpoint ``--resume`` will continue from, or a one-line
  DamagedCheckpointError (:func:`checkpoint_integrity.no_intact_checkpoint`) when this run's
  checkpoints exist but none is whole: the user is told which file is wrong and what to do, never
  "no ``latest``" while ``latest`` is there.
* :func:`created_by_mkdir` / :func:`remove_if_empty` — a start that fails before training removes
  the directories it created, and only those, and only while they hold no file.

The caller (``Trainer``) holds the run lock (``checkpoint.lock_run``) around all of it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from megatron_ext.checkpoint_integrity import DamagedCheckpointError, no_intact_checkpoint, resume_candidates


def resume_hint(ckpt_dir: Path, resume: str, latest_name: str, check: Callable[[Path], Path],
                resolve: Callable[[Path], Path]) -> Path | None:
    """The checkpoint ``--resume`` (``auto`` | ``none`` | PATH) continues from; None to start at step 0.

    ``auto``: the newest candidate (``latest``'s, then older ones) that ``check`` (structure and
    sizes, no hashing) passes. ``check`` / ``resolve`` are ``checkpoint.check`` / ``checkpoint.resolve``
    (kept out of this torch-free module). Raises DamagedCheckpointError when checkpoints (or
    ``latest``) exist but none is whole; whatever else ``check`` raises (an unsafe checkpoint) passes.
    """
    if resume == "none":
        return None
    if resume != "auto":
        return Path(resume)
    damage: list[DamagedCheckpointError] = []
    for candidate in (resume_candidates(ckpt_dir, latest_name) if ckpt_dir.is_dir() else []):
        try:
            return check(candidate)
        except DamagedCheckpointError as err:
            damage.append(err)
    if not damage and (ckpt_dir / latest_name).is_file():
        try:  # `latest` without any iter_* directory: empty, or naming one that is gone
            resolve(ckpt_dir)
        except DamagedCheckpointError as err:
            damage.append(err)
    if damage:
        raise no_intact_checkpoint(ckpt_dir, damage)
    return None


def created_by_mkdir(directory: Path) -> Path | None:
    """The topmost missing directory on the way to ``directory`` (the first one ``mkdir(parents=True)``
    creates), or None when ``directory`` exists."""
    directory = Path(directory).absolute()
    if directory.exists():
        return None
    top = directory
    while not top.parent.exists():
        top = top.parent
    return top


def remove_if_empty(top: Path) -> None:
    """Remove ``top`` and the directories below it, bottom-up, as far as they hold no file."""
    if not top.is_dir():
        return
    for dirpath, _, filenames in os.walk(top, topdown=False):
        if not filenames:
            try:
                Path(dirpath).rmdir()
            except OSError:
                pass  # not empty (a file below, or one that appeared meanwhile): keep it
