"""Sharded safetensors written and read tensor by tensor, so a conversion never holds more than the tensor at hand.

Which tensor goes to which file is decided by ``huggingface_hub.split_torch_state_dict_into_shards``
(the rule of ``save_pretrained``: tensors in order, a new file when the next one would pass
``max_shard_size``, a tensor larger than the limit in a file of its own; file names
``model-00001-of-0000N.safetensors``, or ``model.safetensors`` alone), applied to data-less ``meta``
tensors: every shape is known before any data is read. Each file's safetensors header — 8-byte
little-endian length, then JSON giving every tensor's dtype, shape and byte range, padded with
spaces to 8 bytes (https://github.com/huggingface/safetensors#format) — is therefore written
first, and each tensor's bytes are appended as soon as it is converted. The safetensors Python
API can only serialise a complete dict of tensors, which would hold a whole shard (5 GB by
default) in memory. ``model.safetensors.index.json`` is written as ``huggingface_hub`` writes it.

Reading (:func:`read_header`, :func:`read_tensor`) uses the same header to ``readinto`` one
tensor's bytes straight into a new tensor. ``safetensors.safe_open`` memory-maps the whole file
instead: the pages of every tensor read stay resident (and counted) until the file is closed, so a
copy made from a mapped tensor costs twice its size for a while — a gigabyte for an 11.5B model's
embedding.
"""
from __future__ import annotations

import json
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch

from megatron_ext.hf.mapping import MappingError

INDEX_FILE = "model.safetensors.index.json"
_ST_DTYPES = {torch.bfloat16: "BF16", torch.float16: "F16", torch.float32: "F32"}
_TORCH_DTYPES = {v: k for k, v in _ST_DTYPES.items()}


@dataclass(frozen=True)
class ShardPlan:
    """Where every tensor goes: ``files`` maps file name → tensor names in write order."""

    files: dict[str, list[str]]
    shapes: dict[str, tuple[int, ...]]
    dtype: torch.dtype
    total_size: int  # bytes of tensor data, all files

    @property
    def sharded(self) -> bool:
        return len(self.files) > 1


def plan_shards(shapes: dict[str, tuple[int, ...]], dtype: torch.dtype, max_shard_size: str | int) -> ShardPlan:
    """The shard layout of tensors ``shapes`` (in write order) stored as ``dtype``.

    Raises:
        ValueError: ``max_shard_size`` is not a size ("5GB", "500MB", or bytes).
    """
    from huggingface_hub import split_torch_state_dict_into_shards

    if dtype not in _ST_DTYPES:
        raise ValueError(f"unsupported dtype {dtype}")
    meta = {name: torch.empty(shape, dtype=dtype, device="meta") for name, shape in shapes.items()}
    split = split_torch_state_dict_into_shards(meta, max_shard_size=max_shard_size)
    return ShardPlan(files={f: list(names) for f, names in split.filename_to_tensors.items()},
                     shapes=dict(shapes), dtype=dtype, total_size=int(split.metadata["total_size"]))


def _header(names: list[str], plan: ShardPlan, metadata: dict[str, str]) -> bytes:
    body: dict = {"__metadata__": metadata}
    offset = 0
    for name in names:
        shape = plan.shapes[name]
        size = plan.dtype.itemsize
        for d in shape:
            size *= d
        body[name] = {"dtype": _ST_DTYPES[plan.dtype], "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(body, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw


class ShardWriter:
    """Writes the files of a :class:`ShardPlan` into ``out_dir`` as tensors arrive (in plan order per file).

    Use as a context manager; :meth:`close` checks that every planned tensor was written and
    writes the index when there are several files.

    Raises:
        MappingError: a tensor out of plan order, or of another shape or dtype than planned.
    """

    def __init__(self, out_dir: Path, plan: ShardPlan, metadata: dict[str, str] | None = None) -> None:
        if sys.byteorder != "little":  # safetensors stores little-endian; we write memory as it is
            raise RuntimeError("the streaming safetensors writer needs a little-endian machine")
        self.out_dir, self.plan = Path(out_dir), plan
        self.metadata = metadata or {"format": "pt"}
        self._file_of = {name: f for f, names in plan.files.items() for name in names}
        self._next: dict[str, int] = {f: 0 for f in plan.files}
        self._open: dict[str, BinaryIO] = {}

    def write(self, name: str, tensor: torch.Tensor) -> None:
        file = self._file_of.get(name)
        if file is None:
            raise MappingError(f"{name} is not in the shard plan")
        names = self.plan.files[file]
        if names[self._next[file]] != name:
            raise MappingError(f"{file}: expected {names[self._next[file]]} next, got {name}")
        if tuple(tensor.shape) != self.plan.shapes[name] or tensor.dtype != self.plan.dtype:
            raise MappingError(f"{name}: {tuple(tensor.shape)} {tensor.dtype}, planned {self.plan.shapes[name]} "
                               f"{self.plan.dtype}")
        if file not in self._open:
            self._open[file] = open(self.out_dir / file, "wb")
            self._open[file].write(_header(names, self.plan, self.metadata))
        data = tensor.detach().to("cpu").contiguous().reshape(-1)
        if data.numel():
            self._open[file].write(data.view(torch.uint8).numpy().data)
        self._next[file] += 1
        if self._next[file] == len(names):
            self._open.pop(file).close()

    def close(self) -> list[str]:
        """Finish: every planned tensor written; the index written if sharded. Returns the file names."""
        for handle in self._open.values():
            handle.close()
        self._open.clear()
        left = [names[self._next[f]] for f, names in self.plan.files.items() if self._next[f] < len(names)]
        if left:
            raise MappingError(f"{len(left)} planned tensors were never written, e.g. {left[:3]}")
        if self.plan.sharded:
            index = {"metadata": {"total_size": self.plan.total_size}, "weight_map": dict(self._file_of)}
            (self.out_dir / INDEX_FILE).write_text(json.dumps(index, indent=2))
        return list(self.plan.files)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            for handle in self._open.values():
                handle.close()


def read_header(path: Path) -> tuple[int, dict[str, dict]]:
    """(byte offset of the data, ``{name: {"dtype", "shape", "data_offsets"}}``) of a safetensors file.

    Raises:
        MappingError: not a safetensors file (header length or JSON unreadable).
    """
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise MappingError(f"{path}: not a safetensors file (too short)")
        (length,) = struct.unpack("<Q", raw)
        if length > 100 * 2**20:
            raise MappingError(f"{path}: not a safetensors file (header of {length} bytes)")
        try:
            header = json.loads(f.read(length))
        except ValueError as err:
            raise MappingError(f"{path}: not a safetensors file ({err})") from err
    header.pop("__metadata__", None)
    return 8 + length, header


def read_tensor(path: Path, data_start: int, entry: dict) -> torch.Tensor:
    """One tensor of a safetensors file, read into its own memory (``entry``: its header record).

    Raises:
        MappingError: a dtype other than BF16/F16/F32, or a byte range that does not match the shape.
    """
    dtype = _TORCH_DTYPES.get(entry["dtype"])
    if dtype is None:
        raise MappingError(f"{path}: dtype {entry['dtype']} (only BF16, F16 and F32 are read)")
    tensor = torch.empty(entry["shape"], dtype=dtype)
    begin, end = entry["data_offsets"]
    if end - begin != tensor.numel() * dtype.itemsize:
        raise MappingError(f"{path}: {end - begin} bytes for a {dtype} tensor of shape {entry['shape']}")
    if tensor.numel():
        with open(path, "rb") as f:
            f.seek(data_start + begin)
            view = tensor.reshape(-1).view(torch.uint8).numpy()
            if f.readinto(view) != view.nbytes:
                raise MappingError(f"{path}: truncated")
    return tensor
