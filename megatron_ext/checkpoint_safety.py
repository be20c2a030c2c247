"""Loading a checkpoint never runs code from it: restricted unpickling for dist-checkpoints.

A torch_dist checkpoint (Megatron-Core ``dist_checkpointing``) keeps two kinds of pickles:

* ``.metadata`` (and rank-local ``__<rank>.metadata``): torch's ``FileSystemReader.read_metadata``
  (torch/distributed/checkpoint/filesystem.py) calls plain ``pickle.load`` on it, so a payload
  prefixed to a valid file runs on every load and the checkpoint still loads.
* byte items inside the shards (``ShardedObject``: RNG state, common state, ``_extra_state``):
  ``DefaultLoadPlanner.load_bytes`` (default_planner.py, inherited by Megatron-Core's
  ``MCoreLoadPlanner``) calls ``torch.load(weights_only=False)`` on them.

:func:`install` replaces both readers in this process: ``.metadata`` goes through
:class:`MetadataUnpickler`, which admits only the classes the format is made of (``ALLOWED`` plus
torch dtypes) and refuses anything else with :class:`UnsafeCheckpointError`; byte items go through
``torch.load(weights_only=True)``. Tensor payloads were already read with ``weights_only=True`` by
torch, and a legacy ``common.pt`` is read by ``torch.load``'s default, also ``weights_only=True``
since torch 2.6. :func:`read_metadata` is the same reader for our own pre-load checks, so a refused
file fails before any model is built, with the file named.

Importing ``megatron_ext.checkpoint`` calls :func:`install`; every path that loads a checkpoint
(``midm train`` resume and ``checkpoint.load``, ``convert``, ``dus``, ``prune``, ``distill``'s
teacher, inference) goes through that module.
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

from megatron_ext.checkpoint_integrity import CheckpointError, DamagedCheckpointError

METADATA = ".metadata"

# (module, name) pairs a torch_dist .metadata is built from (torch 2.13, Megatron-Core 0.19), found by
# recording find_class over checkpoints saved by every path here (train, dus, prune, convert).
ALLOWED: frozenset[tuple[str, str]] = frozenset({
    ("torch.distributed.checkpoint.metadata", "Metadata"),
    ("torch.distributed.checkpoint.metadata", "TensorStorageMetadata"),
    ("torch.distributed.checkpoint.metadata", "BytesStorageMetadata"),
    ("torch.distributed.checkpoint.metadata", "ChunkStorageMetadata"),
    ("torch.distributed.checkpoint.metadata", "TensorProperties"),
    ("torch.distributed.checkpoint.metadata", "MetadataIndex"),
    ("torch.distributed.checkpoint.metadata", "StorageMeta"),
    ("torch.distributed.checkpoint.metadata", "_MEM_FORMAT_ENCODING"),
    ("torch.distributed.checkpoint.planner", "SavePlan"),
    ("torch.distributed.checkpoint.planner", "WriteItem"),
    ("torch.distributed.checkpoint.planner", "WriteItemType"),
    ("torch.distributed.checkpoint.planner", "TensorWriteData"),
    ("torch.distributed.checkpoint.planner", "BytesIOWriteData"),
    ("torch.distributed.checkpoint.filesystem", "_StorageInfo"),
    ("torch.serialization", "_get_layout"),
    ("torch", "Size"),
    ("collections", "OrderedDict"),
})


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint file asks to unpickle something outside the checkpoint format (possible code)."""


class MetadataUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only ``ALLOWED`` and ``torch.<dtype>``.

    Every callable a pickle can invoke (REDUCE, NEWOBJ, BUILD's ``__setstate__``) is first fetched
    through ``find_class``, so refusing there refuses the call. Persistent ids are refused as well.
    """

    def __init__(self, file, source: str):
        super().__init__(file)
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED or (module == "torch" and _is_dtype(name)):
            return super().find_class(module, name)
        raise UnsafeCheckpointError(
            f"{self.source}: refusing to unpickle {module}.{name} — a dist-checkpoint's .metadata holds only "
            "torch.distributed.checkpoint records, so this file was altered or made by something else and may run "
            "code; do not load it (see README, 'Trusting checkpoints')")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafeCheckpointError(f"{self.source}: refusing a persistent id in .metadata ({str(pid)[:80]})")


def _is_dtype(name: str) -> bool:
    import torch

    return isinstance(getattr(torch, name, None), torch.dtype)


def load_metadata(stream, source: str):
    """Unpickle a ``Metadata`` from ``stream`` through :class:`MetadataUnpickler`.

    Raises UnsafeCheckpointError for a class outside the format, DamagedCheckpointError for a file
    that is truncated or not a Metadata pickle at all.
    """
    from torch.distributed.checkpoint.metadata import Metadata

    try:
        metadata = MetadataUnpickler(stream, source).load()
    except CheckpointError:
        raise
    except Exception as err:  # EOFError, UnpicklingError, ValueError …: not a whole pickle
        raise DamagedCheckpointError(source, f"not a readable checkpoint index ({type(err).__name__}: "
                                             f"{err})") from err
    if not isinstance(metadata, Metadata):
        raise DamagedCheckpointError(source, f"holds a {type(metadata).__name__}, not a checkpoint Metadata")
    return metadata


def read_metadata(directory: Path):
    """The ``Metadata`` of a checkpoint directory, read safely (see :func:`load_metadata`)."""
    path = Path(directory) / METADATA
    with open(path, "rb") as f:
        return load_metadata(f, str(path))


def storage_extents(metadata) -> dict[str, int]:
    """Shard file name → end of its last record in bytes (``offset + length`` over ``storage_data``)."""
    ends: dict[str, int] = {}
    for info in (metadata.storage_data or {}).values():
        ends[info.relative_path] = max(ends.get(info.relative_path, 0), info.offset + info.length)
    return ends


def _safe_read_metadata(self, *args: Any, **kwargs: Any):
    """``FileSystemReader.read_metadata`` (torch 2.13) with the restricted unpickler."""
    from torch.distributed.checkpoint.metadata import StorageMeta

    path = self._get_metadata_path(kwargs.get("rank"))
    with self.fs.create_stream(path, "rb") as stream:
        metadata = load_metadata(stream, str(path))
    if getattr(metadata, "storage_meta", None) is None:
        metadata.storage_meta = StorageMeta()
    metadata.storage_meta.load_id = self.load_id
    return metadata


def _safe_load_bytes(self, read_item, value: io.BytesIO) -> None:
    """``DefaultLoadPlanner.load_bytes`` reading byte items with ``torch.load(weights_only=True)``."""
    import torch
    from torch.distributed.checkpoint._traverse import set_element  # the helper torch's own method uses

    fqn = read_item.dest_index.fqn
    try:
        obj = torch.load(value, weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise UnsafeCheckpointError(f"checkpoint item {fqn!r} is not plain data (weights_only load refused it: "
                                    f"{first[:200]})") from err
    if self.flatten_state_dict:
        set_element(self.original_state_dict, self.mappings[fqn], obj)
    else:
        self.state_dict[fqn] = obj


def install() -> None:
    """Route torch's dist-checkpoint reads in this process through the safe readers (idempotent).

    Raises RuntimeError if torch no longer has the methods replaced here (update this module).
    """
    from torch.distributed.checkpoint.default_planner import DefaultLoadPlanner
    from torch.distributed.checkpoint.filesystem import FileSystemReader

    if getattr(FileSystemReader.read_metadata, "_midm_safe", False):
        return
    for owner, attr in ((FileSystemReader, "_get_metadata_path"), (FileSystemReader, "read_metadata"),
                        (DefaultLoadPlanner, "load_bytes")):
        if not hasattr(owner, attr):
            raise RuntimeError(f"torch changed: {owner.__name__}.{attr} is gone; update megatron_ext/checkpoint_safety.py")
    _safe_read_metadata._midm_safe = True  # type: ignore[attr-defined]
    FileSystemReader.read_metadata = _safe_read_metadata
    DefaultLoadPlanner.load_bytes = _safe_load_bytes
