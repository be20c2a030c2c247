"""Distributed checkpoints (Megatron-Core ``dist_checkpointing``, torch_dist format).

Layout::

    ROOT/iter_0000100/      model + optimizer shards, scheduler, RNG and data position
    ROOT/iter_0000100/recipe.json, trainer_state.json, manifest.json (size + hash of every file)
    ROOT/latest             text: the newest complete iter dir name

A save checks free space first, goes to ``ROOT/.tmp_iter_…`` and is renamed into place only after
every rank has written its shards and the manifest is written; ``latest`` is replaced atomically
afterwards. A crash mid-save therefore never leaves a broken ``latest``, and a save that runs out of
space removes its temporary directory and says how much a checkpoint needs. Shards are addressed by
global tensor coordinates, so a checkpoint saved with one TP/PP layout loads into another
(resharding).

Loading trusts nothing in the directory: ``.metadata`` and the shards' byte items are unpickled
through restricted readers (``checkpoint_safety``, installed on import of this module), the files
are checked for presence, size and — unless ``verify=False`` — checksum (``checkpoint_integrity``),
and every problem is one line naming the file. :func:`resume` falls back past damaged checkpoints.
"""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any, Callable

import torch

from megatron_ext import checkpoint_integrity as integrity
from megatron_ext import checkpoint_safety as safety
from megatron_ext import checkpoint_space as space
from megatron_ext.checkpoint_integrity import CheckpointError, DamagedCheckpointError  # noqa: F401 (API)
from megatron_ext.checkpoint_safety import UnsafeCheckpointError  # noqa: F401 (API)
from megatron_ext.checkpoint_space import CheckpointSpaceError  # noqa: F401 (API)
from recipes import Recipe, recipe_from_dict, recipe_to_dict

LATEST = "latest"

safety.install()  # every checkpoint read in this process goes through the restricted unpicklers
_VERIFIED: set[tuple[str, float]] = set()  # (iter dir, manifest mtime) already hashed in this process
_UNVERIFIED_SAID: set[str] = set()


def iter_name(step: int) -> str:
    return f"iter_{step:07d}"


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The GPTModel inside DDP / Float16Module wrappers."""
    while hasattr(module, "module") and isinstance(module.module, torch.nn.Module):
        module = module.module
    return module


def resolve(path: str | os.PathLike) -> Path:
    """A checkpoint root (follows ``latest``) or an ``iter_*`` directory → the iter directory.

    Raises DamagedCheckpointError for an empty or dangling ``latest`` (or an iter dir without
    ``recipe.json``), CheckpointError when ``path`` is not a checkpoint at all.
    """
    path = Path(path)
    pointer = path / LATEST
    if pointer.is_file():
        name = pointer.read_text().strip()
        if not name:
            raise DamagedCheckpointError(pointer, "empty (it should name an iter_* directory)")
        if "/" in name or not (path / name).is_dir():
            raise DamagedCheckpointError(pointer, f"points to {name!r}, which is not a directory here")
        return path / name
    if (path / "recipe.json").is_file():
        return path
    if path.is_dir() and path.name.startswith("iter_"):
        raise DamagedCheckpointError(path / "recipe.json", "missing")
    if path.is_dir() and any(path.glob("iter_*")):
        raise DamagedCheckpointError(pointer, "missing; pass one of the iter_* directories explicitly")
    raise CheckpointError(f"{path} is not a checkpoint: expected {path}/{LATEST} or an iter_* directory "
                          "with recipe.json")


def latest(root: str | os.PathLike | None) -> Path | None:
    if root is None or not (Path(root) / LATEST).is_file():
        return None
    return resolve(root)


def read_recipe(path: str | os.PathLike) -> Recipe:
    return recipe_from_dict(json.loads((resolve(path) / "recipe.json").read_text()))


def read_trainer_state(path: str | os.PathLike) -> dict[str, Any]:
    state_file = resolve(path) / "trainer_state.json"
    if not state_file.is_file():
        return {}
    try:
        return json.loads(state_file.read_text())
    except ValueError as err:
        raise DamagedCheckpointError(state_file, f"not valid JSON ({err})") from err


def _barrier() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def _rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


def _world() -> int:
    return torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1


def _gather(obj: Any) -> list[Any]:
    if not torch.distributed.is_initialized():
        return [obj]
    out: list[Any] = [None] * _world()
    torch.distributed.all_gather_object(out, obj)
    return out


def _reduce(value: int, op: str) -> int:
    if not torch.distributed.is_initialized():
        return value
    t = torch.tensor([value], dtype=torch.int64, device="cuda" if torch.cuda.is_available() else "cpu")
    torch.distributed.all_reduce(t, op=getattr(torch.distributed.ReduceOp, op))
    return int(t.item())


def _layout() -> dict[str, int]:
    """The parallel layout (CP and VPP only when used, so older checkpoints still compare equal)."""
    from megatron.core import parallel_state as ps

    layout = {"tp": ps.get_tensor_model_parallel_world_size(), "pp": ps.get_pipeline_model_parallel_world_size(),
              "dp": ps.get_data_parallel_world_size()}
    if ps.get_context_parallel_world_size() > 1:
        layout["cp"] = ps.get_context_parallel_world_size()
    if ps.get_virtual_pipeline_model_parallel_world_size():
        layout["vpp"] = ps.get_virtual_pipeline_model_parallel_world_size()
    return layout


def _rng_sharded_object():
    """This rank's RNG states as a ShardedObject (restored only into the same layout)."""
    from megatron.core import parallel_state as ps
    from megatron.core import tensor_parallel
    from megatron.core.dist_checkpointing.mapping import ShardedObject

    state = {"torch": torch.get_rng_state(), "tracker": tensor_parallel.get_cuda_rng_tracker().get_states()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    layout = _layout()
    shape = (layout["pp"], layout["tp"], layout["dp"])
    ranks = (ps.get_pipeline_model_parallel_rank(), ps.get_tensor_model_parallel_rank(),
             ps.get_data_parallel_rank())
    if "cp" in layout:  # one RNG state per context-parallel rank too
        shape, ranks = shape + (layout["cp"],), ranks + (ps.get_context_parallel_rank(),)
    return ShardedObject("rng_state", state, shape, ranks, replica_id=0)


def _chunks(model) -> list[torch.nn.Module]:
    return list(model) if isinstance(model, (list, tuple)) else [model]


def _model_keys(model) -> list[str]:
    """``model`` for one chunk, ``model0``, ``model1`` … for interleaved chunks (Megatron-LM's names). Tensors are
    addressed by global layer offsets inside, so a checkpoint loads into either form."""
    chunks = _chunks(model)
    return ["model"] if len(chunks) == 1 else [f"model{i}" for i in range(len(chunks))]


def _sharded_state(model, optimizer=None, scheduler=None, with_rng: bool = True, is_loading: bool = False):
    state: dict[str, Any] = {key: unwrap(chunk).sharded_state_dict()
                             for key, chunk in zip(_model_keys(model), _chunks(model))}
    if optimizer is not None:
        model_sd = state["model"] if "model" in state else dict(state)
        state["optimizer"] = optimizer.sharded_state_dict(model_sd, is_loading=is_loading)
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    if with_rng:
        state["rng_state"] = _rng_sharded_object()
    return state


def save(root: str | os.PathLike, step: int, model, optimizer, scheduler, recipe: Recipe,
         trainer_state: dict[str, Any], keep_last: int | None = None) -> Path:
    """Save atomically to ``ROOT/iter_<step>`` with its manifest and point ``latest`` at it (collective call).

    ``model``: a module or the list of this rank's interleaved model chunks. Raises
    CheckpointSpaceError (nothing left behind, ``latest`` unchanged) when the filesystem reports too
    little free space beforehand or a write fails for lack of space.
    """
    from megatron.core import dist_checkpointing
    from torch.distributed.checkpoint.api import CheckpointException

    root = Path(root)
    name = iter_name(step)
    final, tmp = root / name, root / f".tmp_{name}"
    state = _sharded_state(model, optimizer, scheduler)
    needed = space.needed_bytes(_reduce(space.local_shard_bytes(state), "SUM"))
    free = space.free_bytes(root)
    free = _reduce(free if free is not None else 1 << 62, "MIN")
    previous = _pointed(root)
    space.check_free(root, name, needed, None if free >= 1 << 62 else free, previous)
    logged: list[str] = []
    try:
        if _rank() == 0:
            root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
        _barrier()
        with space.writer_errors() as logged:
            dist_checkpointing.save(state, str(tmp))
        _barrier()
        algorithm = integrity.default_algorithm()
        mine = {p.name: integrity.describe(p, algorithm) for p in tmp.glob(f"__{_rank()}_*.distcp")}
        hashed = {k: v for part in _gather(mine) for k, v in part.items()}
        if _rank() == 0:
            (tmp / "recipe.json").write_text(json.dumps(recipe_to_dict(recipe), indent=2))
            (tmp / "trainer_state.json").write_text(json.dumps({**trainer_state, "layout": _layout()}, indent=2))
            for p in sorted(tmp.iterdir()):  # the index, JSON files and any shard another rank did not hash
                if p.is_file() and p.name not in hashed:
                    hashed[p.name] = integrity.describe(p, algorithm)
            integrity.write_manifest(tmp, hashed, algorithm)
            if final.exists():  # re-saving the same step (e.g. after a resume): replace it whole
                shutil.rmtree(final)
            os.replace(tmp, final)
            pointer = root / f".{LATEST}.tmp"
            pointer.write_text(final.name)
            os.replace(pointer, root / LATEST)
            if keep_last:
                done = sorted(p for p in root.glob("iter_*") if p.is_dir())
                for old in done[:-keep_last]:
                    shutil.rmtree(old, ignore_errors=True)
    except (Exception, CheckpointException) as err:
        if _rank() == 0:
            shutil.rmtree(tmp, ignore_errors=True)
            (root / f".{LATEST}.tmp").unlink(missing_ok=True)
        explained = space.explain(err, root, name, needed, previous, logged)
        if explained is not None:
            raise explained from None
        raise
    _barrier()
    return final


def _pointed(root: Path) -> str | None:
    """The iter dir name ``latest`` holds, if it names an existing directory."""
    try:
        name = (root / LATEST).read_text().strip()
    except OSError:
        return None
    return name if name and (root / name).is_dir() else None


def check(path: str | os.PathLike, need_trainer_state: bool = False, verify: bool = True) -> Path:
    """The iter directory of ``path`` after checking it is whole and safe to read (collective when distributed).

    Checks, cheapest first: required files present and parsable; every ``manifest.json`` entry with
    its recorded size; ``.metadata`` through the restricted unpickler; each shard long enough for
    the records ``.metadata`` places in it; with ``verify``, every file's checksum (split across
    ranks, once per process). A checkpoint without a manifest (saved before manifests) is loaded
    with a notice. Raises DamagedCheckpointError or UnsafeCheckpointError, one line naming the file.
    """
    ckpt = resolve(path)
    integrity.check_structure(ckpt, need_trainer_state)
    manifest = integrity.read_manifest(ckpt)
    if manifest is not None:
        integrity.check_sizes(ckpt, manifest)
    integrity.check_extents(ckpt, safety.storage_extents(safety.read_metadata(ckpt)))
    if verify and manifest is not None:
        key = (str(ckpt.resolve()), (ckpt / integrity.MANIFEST).stat().st_mtime)
        if key not in _VERIFIED:
            integrity.verify_hashes(ckpt, manifest, _rank(), _world(), _gather)
            _VERIFIED.add(key)
    elif verify and str(ckpt) not in _UNVERIFIED_SAID and _rank() == 0:
        _UNVERIFIED_SAID.add(str(ckpt))
        print(f"[midm] note: {ckpt} has no {integrity.MANIFEST} (saved before checksums): sizes and structure "
              "checked, contents not verified", file=sys.stderr, flush=True)
    return ckpt


_DAMAGE = (EOFError, pickle.UnpicklingError, zipfile.BadZipFile, UnicodeDecodeError)
_DAMAGE_TEXT = ("PytorchStreamReader", "invalid header", "central directory", "unexpected EOF", "truncated")


def _load_error(ckpt: Path, err: BaseException) -> CheckpointError:
    """One line for a failed ``dist_checkpointing.load``: unsafe, damaged, or a geometry mismatch."""
    causes = list(space._walk(err))
    for e in causes:
        if isinstance(e, CheckpointError):
            return e
    for e in causes:
        if isinstance(e, _DAMAGE) or (isinstance(e, (RuntimeError, OSError)) and any(t in str(e) for t in _DAMAGE_TEXT)):
            return DamagedCheckpointError(ckpt, f"a shard could not be read ({type(e).__name__}: "
                                                f"{_one_line(str(e))})")
    return CheckpointError(
        f"could not load {ckpt} into this model ({_one_line(str(err))}). Check that the recipe's model geometry "
        f"matches the checkpoint's recipe.json (`midm recipe show` vs {ckpt}/recipe.json); to change width or depth "
        "use `midm prune` / `midm dus` rather than loading directly.")


def _one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load(path: str | os.PathLike, model, optimizer=None, scheduler=None, verify: bool = True, *,
         validate_access_integrity: bool = True) -> dict[str, Any]:
    """Restore model (+ optimizer, scheduler, RNG when given) from a checkpoint; returns trainer state.

    ``model``: a module or the list of this rank's interleaved model chunks. The RNG states are
    restored only when the TP/PP/DP layout is unchanged; model and optimizer shards reshard to the
    current layout. ``verify``: check file checksums (``checkpoint.verify``).
    ``validate_access_integrity=False`` lets several ranks load overlapping shards (a whole frozen
    model on every pipeline stage).
    Raises DamagedCheckpointError / UnsafeCheckpointError (see :func:`check`) or CheckpointError.
    """
    from megatron.core import dist_checkpointing
    from megatron.core import tensor_parallel
    from torch.distributed.checkpoint.api import CheckpointException

    ckpt = check(path, need_trainer_state=optimizer is not None, verify=verify)
    trainer_state = read_trainer_state(ckpt)
    same_layout = trainer_state.get("layout") == _layout()
    with_rng = optimizer is not None and same_layout
    try:
        state = dist_checkpointing.load(
            _sharded_state(model, optimizer, scheduler=None, with_rng=with_rng, is_loading=True), str(ckpt),
            validate_access_integrity=validate_access_integrity)
        common = dist_checkpointing.load_common_state_dict(str(ckpt)) if scheduler is not None else None
    except (Exception, CheckpointException) as err:
        raise _load_error(ckpt, err) from err
    for key, chunk in zip(_model_keys(model), _chunks(model)):
        unwrap(chunk).load_state_dict(state[key], strict=True)
    if optimizer is not None:
        if "optimizer" not in state:
            raise CheckpointError(f"{ckpt} has no optimizer state; load it as initial weights "
                                  "(--set checkpoint.load=…) instead of resuming")
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(common["scheduler"])
    if with_rng:
        rng = state["rng_state"]
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
        tensor_parallel.get_cuda_rng_tracker().set_states(rng["tracker"])
    return trainer_state


def load_model_only(path: str | os.PathLike, model, verify: bool = True, *,
                    validate_access_integrity: bool = True) -> dict[str, Any]:
    """Weights only (no optimizer, scheduler or RNG): initial weights for a new run, or a frozen model."""
    return load(path, model, verify=verify, validate_access_integrity=validate_access_integrity)


def resume(ckpt_dir: str | os.PathLike, mode: str, model, optimizer, scheduler, verify: bool = True,
           say: Callable[[str], None] = print) -> tuple[Path | None, dict[str, Any] | None]:
    """``--resume`` for a trainer → (iter dir, trainer state), or (None, None) to start fresh.

    ``mode``: ``none``; a path (loaded as given: any damage is an error); or ``auto``: the checkpoint
    ``latest`` names, else — when it is damaged (:class:`DamagedCheckpointError`) — the newest intact
    older one, saying which were skipped and why. Unsafe checkpoints are never skipped silently:
    they fail. Raises DamagedCheckpointError (:func:`checkpoint_integrity.no_intact_checkpoint`) when
    checkpoints exist but none is intact.
    """
    if mode == "none":
        return None, None
    if mode != "auto":
        return resolve(mode), load(mode, model, optimizer, scheduler, verify=verify)
    root = Path(ckpt_dir)
    candidates = integrity.resume_candidates(root, LATEST) if root.is_dir() else []
    pointer = root / LATEST
    if not candidates:
        if pointer.is_file():
            raise DamagedCheckpointError(pointer, f"names {pointer.read_text().strip()!r} but there is no "
                                                  "iter_* directory to resume from")
        return None, None
    if pointer.is_file() and _pointed(root) is None:
        say(f"{pointer} is damaged (it names {pointer.read_text().strip()!r}); looking for the newest intact checkpoint")
    skipped: list[str] = []
    damage: list[DamagedCheckpointError] = []
    for candidate in candidates:
        try:
            state = load(candidate, model, optimizer, scheduler, verify=verify)
        except DamagedCheckpointError as err:
            skipped.append(f"{candidate.name} ({err.path.name}: {err.problem})")
            damage.append(err)
            if candidate != candidates[-1]:
                say(f"{err}; trying an older checkpoint")
            continue
        if skipped:
            say(f"resuming from {candidate.name}, the newest intact checkpoint (skipped {'; '.join(skipped)})")
        return candidate, state
    raise integrity.no_intact_checkpoint(root, damage)


def lock_run(run_dir: str | os.PathLike, ckpt_dir: str | os.PathLike, is_rank0: bool) -> tuple[list, str | None]:
    """Rank 0 locks the run directory (and ``checkpoint.dir`` when it lies outside it), before anything in
    them is read for a decision or changed, and before any process group starts.

    Returns ``(held locks, None)`` — no locks on other ranks — or ``([], refusal)``: the
    RunLockedError message naming the holder's host and PID. A refused trainer must change nothing
    in the directory; :func:`agree_on_run_lock` makes every rank fail together once the process
    group is up (a single process can raise at once).
    """
    from megatron_ext.run_lock import RunLockedError, acquire_all

    if not is_rank0:
        return [], None
    dirs = [Path(run_dir)]
    if not Path(ckpt_dir).resolve().is_relative_to(Path(run_dir).resolve()):
        dirs.append(Path(ckpt_dir))
    try:
        return acquire_all(dirs), None
    except RunLockedError as err:
        return [], str(err)


def agree_on_run_lock(refusal: str | None) -> None:
    """Collective: every rank raises RunLockedError(rank 0's ``refusal``) when rank 0 could not lock the run."""
    from megatron_ext.run_lock import RunLockedError

    if torch.distributed.is_initialized():
        box = [refusal]
        torch.distributed.broadcast_object_list(box, src=0)
        refusal = box[0]
    if refusal:
        raise RunLockedError(refusal)
