"""The ``--output`` of a command that writes a new checkpoint root: refused while it holds a
checkpoint, replaced whole — and only once complete — with ``--overwrite``.

``midm dus``, ``midm prune``, ``midm convert from-hf`` and ``midm convert reshard`` write
``OUTPUT/iter_0000000`` + ``latest``. Saving into a root that already holds a checkpoint would
repoint its ``latest`` (a training run that resumes from it would continue from the new weights)
and leave its ``iter_*`` beside the new one, so:

* :func:`check` refuses such an ``OUTPUT`` in one line naming it (and ``--overwrite`` where the
  command has it). Commands call it before reading any weight — at 11.5B loading and calibrating
  takes hours — and :func:`staged` calls it again at save time (another process may have written
  there meanwhile).
* :func:`staged` with ``overwrite`` has the checkpoint written into a hidden sibling directory and
  swapped in by :func:`publish` (two renames) once complete: a failure leaves the old checkpoint as
  it was, a success leaves none of its files. ``midm convert to-hf`` publishes its HF directory the
  same way (``hf_files``).

Torch-free.
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from midm.errors import MidmError

LATEST = "latest"  # checkpoint.LATEST (that module imports torch)


class OutputExistsError(MidmError):
    """``--output`` already holds a checkpoint (without ``--overwrite``), or is not a directory."""


def existing_checkpoint(root: str | os.PathLike) -> str | None:
    """What makes ``root`` a checkpoint root — ``"latest → iter_0000060"`` or its newest ``iter_*``
    directory — or None when it holds no checkpoint (absent, empty, or other files only)."""
    root = Path(root)
    pointer = root / LATEST
    if pointer.is_file():
        try:
            name = pointer.read_text().strip()
        except OSError:
            name = ""
        return f"{LATEST} → {name}" if name else LATEST
    iters = sorted(p.name for p in root.glob("iter_*") if p.is_dir())
    return iters[-1] if iters else None


def iteration_dir(path: str | os.PathLike) -> Path:
    """A checkpoint root (follows its ``latest``) or an ``iter_*`` directory → the iteration directory."""
    path = Path(path)
    pointer = path / LATEST
    return path / pointer.read_text().strip() if pointer.is_file() else path


def _is_iteration(path: Path) -> bool:
    """An ``iter_*`` directory of a saved checkpoint (dist-checkpoint ``.metadata`` or our ``manifest.json``)."""
    return path.name.startswith("iter_") and ((path / ".metadata").is_file() or (path / "manifest.json").is_file())


def enclosing_checkpoint(output: str | os.PathLike) -> Path | None:
    """The checkpoint ``output`` lies inside — an ``iter_*`` directory that is ``output`` or one of its
    parents, or a parent that is a checkpoint root (holds ``latest`` or an ``iter_*`` directory) — or None."""
    path = Path(output).absolute()
    if _is_iteration(path):
        return path
    for parent in path.parents:
        if _is_iteration(parent) or (parent / LATEST).is_file() or any(
                _is_iteration(p) for p in parent.glob("iter_*")):
            return parent
    return None


def check(output: str | os.PathLike, *, overwrite: bool | None) -> None:
    """Refuse an ``output`` the command may not write its checkpoint to.

    ``overwrite``: the command's ``--overwrite`` flag; None for a command that has none (the message
    then does not offer it).

    Raises:
        OutputExistsError: ``output`` is a file, lies inside a checkpoint (an ``iter_*`` directory or a
            checkpoint root above it: never, even with ``overwrite``), or holds a checkpoint and
            ``overwrite`` is not True.
    """
    output = Path(output)
    if output.exists() and not output.is_dir():
        raise OutputExistsError(f"--output {output} is a file, not a checkpoint directory")
    inside = enclosing_checkpoint(output)
    if inside is not None:
        raise OutputExistsError(f"--output {output} is inside the checkpoint {inside}: writing there would change "
                                "what that checkpoint loads; choose a directory outside it")
    found = existing_checkpoint(output)
    if found is None or overwrite:
        return
    fix = ("choose a new directory, or pass --overwrite to replace it (the new checkpoint replaces the whole "
           "directory once it is complete)" if overwrite is not None else "choose a new --output directory")
    raise OutputExistsError(f"--output {output} already holds a checkpoint ({found}); {fix}")


def staging_dir(output: str | os.PathLike, tag: str) -> Path:
    """The hidden sibling ``.NAME.TAG`` a replacement for ``output`` is written to before :func:`publish`."""
    output = Path(output)
    return output.parent / f".{output.name}.{tag}"


def publish(tmp: Path, output: Path) -> None:
    """Move the finished ``tmp`` to ``output``, replacing what was there (two renames, then the old copy
    is deleted): a reader sees the old directory or the new one, never a mix."""
    output = Path(output)
    old = staging_dir(output, f"old-{os.getpid()}")
    if output.exists():
        os.replace(output, old)
    os.replace(tmp, output)
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def staged(output: str | os.PathLike, *, overwrite: bool | None, writer: bool = True) -> Iterator[Path]:
    """The directory to save the new checkpoint root in; ``output`` holds it when the block ends.

    Checks ``output`` again (:func:`check`). When it holds a checkpoint to replace (``overwrite``),
    yields a fresh staging directory that is published over ``output`` when the block completes and
    removed when it raises; otherwise yields ``output`` itself (``checkpoint.save`` writes an
    ``iter_*`` atomically). ``writer``: False on the ranks of a launched job other than rank 0 — they
    write their shards into the same (shared-filesystem) directory but never create, publish or
    remove it. The staging name is the same on every rank (``.NAME.overwrite``).

    Raises:
        OutputExistsError: as :func:`check`.
    """
    output = Path(output)
    check(output, overwrite=overwrite)
    if existing_checkpoint(output) is None:
        yield output
        return
    tmp = staging_dir(output, "overwrite")
    if writer:
        shutil.rmtree(tmp, ignore_errors=True)  # a crashed earlier attempt's
    try:
        yield tmp
        if writer:
            publish(tmp, output)
    finally:
        if writer and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
