"""Distributed checkpoints (Megatron-Core ``dist_checkpointing``, torch_dist format).

Layout::

    ROOT/iter_0000100/      model + optimizer shards, scheduler, RNG and data position
    ROOT/iter_0000100/recipe.json, trainer_state.json
    ROOT/latest             text: the newest complete iter dir name

A save goes to ``ROOT/.tmp_iter_…`` and is renamed into place only after every rank has written
its shards; ``latest`` is replaced atomically afterwards. A crash mid-save therefore never leaves a
broken ``latest``. Shards are addressed by global tensor coordinates, so a checkpoint saved with one
TP/PP layout loads into another (resharding).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from midm.errors import MidmError
from recipes import Recipe, recipe_from_dict, recipe_to_dict

LATEST = "latest"


class CheckpointError(MidmError, RuntimeError):
    """A checkpoint that is missing, damaged or does not fit the model; the message names the file."""


def iter_name(step: int) -> str:
    return f"iter_{step:07d}"


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The GPTModel inside DDP / Float16Module wrappers."""
    while hasattr(module, "module") and isinstance(module.module, torch.nn.Module):
        module = module.module
    return module


def resolve(path: str | os.PathLike) -> Path:
    """A checkpoint root (follows ``latest``) or an ``iter_*`` directory → the iter directory."""
    path = Path(path)
    if (path / LATEST).is_file():
        return path / (path / LATEST).read_text().strip()
    if (path / "recipe.json").is_file():
        return path
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
    return json.loads(state_file.read_text()) if state_file.is_file() else {}


def _barrier() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.barrier()


def _rank() -> int:
    return torch.distributed.get_rank() if torch.distributed.is_initialized() else 0


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
    """Save atomically to ``ROOT/iter_<step>`` and point ``latest`` at it (collective call).

    ``model``: a module or the list of this rank's interleaved model chunks.
    """
    from megatron.core import dist_checkpointing

    root = Path(root)
    final, tmp = root / iter_name(step), root / f".tmp_{iter_name(step)}"
    if _rank() == 0:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    _barrier()
    dist_checkpointing.save(_sharded_state(model, optimizer, scheduler), str(tmp))
    _barrier()
    if _rank() == 0:
        (tmp / "recipe.json").write_text(json.dumps(recipe_to_dict(recipe), indent=2))
        (tmp / "trainer_state.json").write_text(json.dumps({**trainer_state, "layout": _layout()}, indent=2))
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
    _barrier()
    return final


def load(path: str | os.PathLike, model, optimizer=None, scheduler=None, *,
         validate_access_integrity: bool = True) -> dict[str, Any]:
    """Restore model (+ optimizer, scheduler, RNG when given) from a checkpoint; returns trainer state.

    The RNG states are restored only when the TP/PP/DP layout is unchanged; model and optimizer
    shards reshard to the current layout. ``validate_access_integrity=False`` lets several ranks
    load overlapping shards (a whole frozen model on every pipeline stage).
    """
    from megatron.core import dist_checkpointing
    from megatron.core import tensor_parallel

    ckpt = resolve(path)
    trainer_state = read_trainer_state(ckpt)
    same_layout = trainer_state.get("layout") == _layout()
    with_rng = optimizer is not None and same_layout
    try:
        state = dist_checkpointing.load(
            _sharded_state(model, optimizer, scheduler=None, with_rng=with_rng, is_loading=True), str(ckpt),
            validate_access_integrity=validate_access_integrity)
    except Exception as err:
        raise CheckpointError(
            f"could not load {ckpt} into this model ({err}). Check that the recipe's model geometry matches the "
            f"checkpoint's recipe.json (`midm recipe show` vs {ckpt}/recipe.json); to change width or depth use "
            "`midm prune` / `midm dus` rather than loading directly.") from err
    for key, chunk in zip(_model_keys(model), _chunks(model)):
        unwrap(chunk).load_state_dict(state[key], strict=True)
    if optimizer is not None:
        if "optimizer" not in state:
            raise CheckpointError(f"{ckpt} has no optimizer state; load it as initial weights "
                                  "(--set checkpoint.load=…) instead of resuming")
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        common = dist_checkpointing.load_common_state_dict(str(ckpt))
        scheduler.load_state_dict(common["scheduler"])
    if with_rng:
        rng = state["rng_state"]
        torch.set_rng_state(rng["torch"])
        if "cuda" in rng and torch.cuda.is_available():
            torch.cuda.set_rng_state(rng["cuda"])
        tensor_parallel.get_cuda_rng_tracker().set_states(rng["tracker"])
    return trainer_state


def load_model_only(path: str | os.PathLike, model, *, validate_access_integrity: bool = True) -> dict[str, Any]:
    """Weights only (no optimizer, scheduler or RNG): initial weights for a new run, or a frozen model."""
    return load(path, model, validate_access_integrity=validate_access_integrity)
