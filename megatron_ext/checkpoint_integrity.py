"""Is this checkpoint whole? Per-file checksums (``manifest.json``) and structural checks.

Every ``iter_*`` directory written by :func:`megatron_ext.checkpoint.save` holds ``manifest.json``::

    {"format": 1, "algorithm": "xxh3_128",
     "files": {"__0_0.distcp": {"bytes": 10822331, "hash": "…"}, ".metadata": {…}, "recipe.json": {…}, …}}

written inside the temporary directory, so it appears with the checkpoint in the same atomic rename.
Loading checks, in order of cost: the files a checkpoint needs exist and parse (``recipe.json``,
``metadata.json``, ``.metadata``, ``trainer_state.json`` for a resume), every manifest entry has its
recorded size, every shard holds the byte ranges ``.metadata`` says it does, and — unless
``checkpoint.verify=false`` — every file hashes to its recorded value. Each failure is a
:class:`DamagedCheckpointError` naming the file and what is wrong, on one line.

Hash: XXH3-128 (``xxhash``; ~5 GB/s per core measured here, against 0.46 GB/s for BLAKE2b and
0.9 GB/s for SHA-256), so verifying costs about what reading the files costs. It detects corruption
(bit flips, truncation, a torn copy), not tampering: whoever can rewrite a shard can rewrite the
manifest too. BLAKE2b (``hashlib``) is the fallback when ``xxhash`` is missing; the manifest
records which one it used.

Torch-free: ``megatron_ext.checkpoint`` supplies the collective ``gather`` so that the ranks of a
job hash disjoint subsets of the files and agree on the verdict.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Callable

from midm.errors import MidmError

MANIFEST = "manifest.json"
FORMAT = 1
CHUNK = 8 << 20  # bytes per read while hashing
REQUIRED = ("recipe.json", "metadata.json", ".metadata")


class CheckpointError(MidmError, RuntimeError):
    """A checkpoint that cannot be used as asked (missing, damaged, unsafe, incompatible)."""


class DamagedCheckpointError(CheckpointError):
    """A file of a checkpoint is missing, truncated, unparsable or fails its checksum.

    ``path`` is the file (or directory) at fault; ``--resume auto`` falls back past such a checkpoint.
    """

    def __init__(self, path: str | os.PathLike, problem: str):
        super().__init__(f"damaged checkpoint: {path}: {problem}")
        self.path = Path(path)
        self.problem = problem


def default_algorithm() -> str:
    try:
        import xxhash  # noqa: F401
    except ImportError:
        return "blake2b"
    return "xxh3_128"


def _hasher(algorithm: str):
    if algorithm == "xxh3_128":
        try:
            import xxhash
        except ImportError as err:
            raise CheckpointError("this checkpoint's manifest uses xxh3_128: pip install xxhash (or set "
                                  "checkpoint.verify=false)") from err
        return xxhash.xxh3_128()
    if algorithm == "blake2b":
        return hashlib.blake2b(digest_size=16)
    raise CheckpointError(f"unknown manifest hash {algorithm!r}")


def hash_file(path: Path, algorithm: str) -> str:
    h = _hasher(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def describe(path: Path, algorithm: str) -> dict[str, Any]:
    """``{"bytes": size, "hash": hex}`` of one file."""
    return {"bytes": path.stat().st_size, "hash": hash_file(path, algorithm)}


def write_manifest(directory: Path, entries: dict[str, dict[str, Any]], algorithm: str) -> Path:
    """Write ``manifest.json`` for ``entries`` (file name → :func:`describe`), atomically within ``directory``."""
    tmp = directory / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"format": FORMAT, "algorithm": algorithm, "files": dict(sorted(entries.items()))},
                              indent=1))
    os.replace(tmp, directory / MANIFEST)
    return directory / MANIFEST


def read_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest, or None for a checkpoint saved before manifests existed."""
    path = directory / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
        files = manifest["files"]
        algorithm = manifest["algorithm"]
        assert isinstance(files, dict) and isinstance(algorithm, str)
    except (ValueError, KeyError, TypeError, AssertionError, UnicodeDecodeError) as err:
        raise DamagedCheckpointError(path, f"not a readable manifest ({err})") from err
    return manifest


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise DamagedCheckpointError(path, "missing")
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise DamagedCheckpointError(path, f"not valid JSON ({err})") from err


def check_structure(directory: Path, need_trainer_state: bool) -> None:
    """The files every checkpoint needs exist and parse; a resume also needs ``trainer_state.json``."""
    if not directory.is_dir():
        raise DamagedCheckpointError(directory, "missing")
    for name in REQUIRED:
        path = directory / name
        if not path.is_file():
            raise DamagedCheckpointError(path, "missing")
        if path.stat().st_size == 0:
            raise DamagedCheckpointError(path, "empty")
    _read_json(directory / "recipe.json")
    backend = _read_json(directory / "metadata.json")
    if not isinstance(backend, dict) or "sharded_backend" not in backend:
        raise DamagedCheckpointError(directory / "metadata.json", "has no sharded_backend")
    if need_trainer_state:
        state = _read_json(directory / "trainer_state.json")
        for key in ("step", "consumed_samples"):
            if not isinstance(state, dict) or not isinstance(state.get(key), int):
                raise DamagedCheckpointError(directory / "trainer_state.json", f"has no integer {key!r}")


def check_extents(directory: Path, storage: dict[str, int]) -> None:
    """Every shard file is at least as long as the byte ranges ``.metadata`` records in it.

    ``storage``: relative file name → end of its last record (offset + length, bytes).
    """
    for name, end in sorted(storage.items()):
        path = directory / name
        if not path.is_file():
            raise DamagedCheckpointError(path, "missing (listed in .metadata)")
        size = path.stat().st_size
        if size < end:
            raise DamagedCheckpointError(path, f"truncated: {size:,} bytes, .metadata records data up to byte {end:,}")


def check_sizes(directory: Path, manifest: dict[str, Any]) -> None:
    """Every manifest entry exists with its recorded size (cheap: no reads)."""
    for name, entry in sorted(manifest["files"].items()):
        path = directory / name
        if not path.is_file():
            raise DamagedCheckpointError(path, "missing (listed in manifest.json)")
        size = path.stat().st_size
        if size != entry.get("bytes"):
            what = "truncated" if size < entry.get("bytes", 0) else "wrong size"
            raise DamagedCheckpointError(path, f"{what}: {size:,} bytes, manifest.json says {entry.get('bytes'):,}")


def verify_hashes(directory: Path, manifest: dict[str, Any], rank: int = 0, world: int = 1,
                  gather: Callable[[Any], list[Any]] = lambda x: [x]) -> None:
    """Hash the manifest's files (rank ``r`` of ``world`` takes every ``world``-th) and agree on the result.

    ``gather(obj)`` returns every rank's ``obj`` (an all-gather); every rank raises the same
    DamagedCheckpointError for the first mismatching file (in name order).
    """
    algorithm = manifest["algorithm"]
    names = sorted(manifest["files"])[rank::world]
    bad = []
    for name in names:
        try:
            found = hash_file(directory / name, algorithm)
        except OSError as err:
            bad.append((name, f"unreadable ({err.strerror or err})"))
            continue
        expected = manifest["files"][name]["hash"]
        if found != expected:
            bad.append((name, f"checksum mismatch ({algorithm} {found}, manifest.json says {expected}): the "
                              "file is corrupt"))
    everyone = sorted(item for part in gather(bad) for item in part)
    if everyone:
        name, problem = everyone[0]
        more = f" (and {len(everyone) - 1} more file(s))" if len(everyone) > 1 else ""
        raise DamagedCheckpointError(directory / name, problem + more)


def resume_candidates(root: Path, latest_name: str) -> list[Path]:
    """``iter_*`` directories to try for ``--resume auto``: the one ``latest`` names, then the others
    newest first (``latest`` may be empty or point nowhere after damage)."""
    pointed = None
    pointer = root / latest_name
    if pointer.is_file():
        name = pointer.read_text().strip()
        if name and (root / name).is_dir():
            pointed = root / name
    others = sorted((p for p in root.glob("iter_*") if p.is_dir() and p != pointed), reverse=True)
    return ([pointed] if pointed else []) + others


def no_intact_checkpoint(root: Path, damage: list[DamagedCheckpointError]) -> DamagedCheckpointError:
    """The one-line error when ``--resume auto`` finds checkpoints in ``root`` but none intact.

    ``damage``: what is wrong with each candidate, newest first (at least one). The message names the
    newest one's file and problem, the others briefly, and what the user can do: restore the file,
    resume from an explicit intact checkpoint (``--resume PATH``), or start a new run under another
    ``logging.run_name`` — from the damaged checkpoint's weights (``checkpoint.load``) when only its
    ``trainer_state.json`` (the data position) is lost.
    """
    first = damage[0]
    others = "; ".join(f"{d.path.relative_to(root) if d.path.is_relative_to(root) else d.path}: {d.problem}"
                       for d in damage[1:])
    tried = f" (the older ones are damaged too: {others})" if others else ""
    iter_dir = next((p for p in (first.path, *first.path.parents) if p.name.startswith("iter_")), None)
    weights = (f" or from its weights with a fresh optimizer (--set checkpoint.load={iter_dir})"
               if iter_dir is not None and first.path.name == "trainer_state.json" else "")
    return DamagedCheckpointError(
        first.path, f"{first.problem}; no intact checkpoint in {root} for --resume auto to continue from{tried}. "
                    f"Restore the file, resume from an intact checkpoint with --resume PATH, or start a new run under "
                    f"another --set logging.run_name=…{weights}")
