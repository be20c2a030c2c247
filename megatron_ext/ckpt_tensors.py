"""A dist-checkpoint's model tensors without building a model: shapes, stored dtype, partial reads.

Megatron-Core's ``dist_checkpointing`` stores every tensor by a global key and global shape, whatever
TP/PP layout saved it; a GPT decoder's per-layer tensors are stacked under one key
(``decoder.layers.self_attention.linear_qkv.weight`` of shape ``[num_layers, …]``), addressed by
layer offset. Any sub-box of a global tensor can be requested
(``ShardedTensor.from_rank_offsets``), so a tool can read one layer — or one tensor — at a time and
hold a few hundred megabytes instead of the model (Megatron-Bridge's streaming conversion works the
same way). Keys use Transformer Engine's canonical names (``linear_qkv.layer_norm_weight``) for
both layer specs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from megatron_ext import checkpoint as ckpt

LAYERS_PREFIX = "decoder.layers."
_DTYPE_NAMES = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}


@dataclass(frozen=True)
class StoredTensor:
    """One global tensor of a checkpoint: its key, global ``shape`` and ``dtype``."""

    key: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


def model_tensors(path: str | Path) -> dict[str, StoredTensor]:
    """The model's tensors in a checkpoint (root or ``iter_*``), by key; optimizer state excluded.

    Reads only the checkpoint's metadata (no tensor data).

    Raises:
        CheckpointError: not a checkpoint, or its metadata cannot be read.
    """
    from megatron.core import dist_checkpointing

    iter_dir = ckpt.check(path)  # whole and safe to read (checksums verified once per process)
    try:
        metadata = dist_checkpointing.load_tensors_metadata(str(iter_dir))
    except Exception as err:  # a missing/damaged .metadata or metadata.json
        raise ckpt.CheckpointError(f"cannot read the tensor metadata of {iter_dir}: {err}") from err
    return {k: StoredTensor(k, tuple(v.global_shape), v.dtype) for k, v in metadata.items()
            if not k.startswith("optimizer.") and hasattr(v, "global_shape")}


def stored_dtype(tensors: dict[str, StoredTensor]) -> str:
    """The dtype ("bf16" | "fp16" | "fp32") holding most of the model's elements.

    Norm weights may be stored wider than the matrices (Megatron's local layer spec keeps them
    fp32), so the majority by element count, not the widest, is the model's dtype.
    """
    counts: dict[torch.dtype, int] = {}
    for t in tensors.values():
        counts[t.dtype] = counts.get(t.dtype, 0) + t.numel
    if not counts:
        raise ckpt.CheckpointError("the checkpoint holds no model tensors")
    dtype = max(counts, key=counts.get)
    if dtype not in _DTYPE_NAMES:
        raise ckpt.CheckpointError(f"model tensors are stored as {dtype}; only bf16, fp16 and fp32 are supported")
    return _DTYPE_NAMES[dtype]


def checkpoint_dtype(path: str | Path) -> str:
    """:func:`stored_dtype` of the checkpoint at ``path`` (root or ``iter_*``)."""
    return stored_dtype(model_tensors(path))


def layer_key(name: str) -> tuple[str, int | None]:
    """(checkpoint key, layer) of a model ``state_dict`` name in canonical (TE) spelling.

    ``decoder.layers.3.mlp.linear_fc2.weight`` → (``decoder.layers.mlp.linear_fc2.weight``, 3);
    names outside the decoder stack → (name, None).
    """
    if name.startswith(LAYERS_PREFIX):
        index, _, rest = name[len(LAYERS_PREFIX):].partition(".")
        if index.isdigit():
            return LAYERS_PREFIX + rest, int(index)
    return name, None


def read(path: str | Path, requests: dict[str, tuple[str, int | None]],
         tensors: dict[str, StoredTensor] | None = None) -> dict[str, torch.Tensor]:
    """Read whole tensors or one-layer slices of stacked ones: ``{name: (key, layer | None)}`` → CPU tensors.

    Each result has the stored dtype and the global shape (without the layer axis for a slice).
    One ``dist_checkpointing.load`` for all ``requests``; memory is the results plus the reader's
    transient buffer of about one tensor. Collective when torch.distributed is initialised (every
    rank must make the same requests).

    Raises:
        CheckpointError: a key the checkpoint does not hold, or a layer beyond its depth.
    """
    from megatron.core import dist_checkpointing
    from megatron.core.dist_checkpointing.mapping import ShardedTensor

    iter_dir = ckpt.check(path)  # whole and safe to read (checksums verified once per process)
    tensors = tensors if tensors is not None else model_tensors(iter_dir)
    sharded, out = {}, {}
    for name, (key, layer) in requests.items():
        stored = tensors.get(key)
        if stored is None:
            raise ckpt.CheckpointError(f"{iter_dir} holds no tensor {key!r}")
        if layer is None:
            out[name] = torch.empty(stored.shape, dtype=stored.dtype)
            sharded[name] = ShardedTensor.from_rank_offsets(key, out[name], replica_id=0)
        else:
            depth = stored.shape[0]
            if not 0 <= layer < depth:
                raise ckpt.CheckpointError(f"{key}: layer {layer} requested but the checkpoint has {depth}")
            out[name] = torch.empty(stored.shape[1:], dtype=stored.dtype)
            sharded[name] = ShardedTensor.from_rank_offsets(key, out[name].unsqueeze(0), (0, layer, depth),
                                                            replica_id=0)
    if sharded:
        loaded = dist_checkpointing.load(sharded, str(iter_dir), validate_access_integrity=False)
        for name in sharded:  # normally the very tensors passed in; copy if the strategy returned others
            result = loaded[name]
            if result.data_ptr() != out[name].data_ptr():
                out[name].copy_(result.reshape(out[name].shape))
    return out
