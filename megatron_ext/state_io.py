"""Plain state-dict plumbing for checkpoint surgery (``midm dus``, ``midm prune``).

Surgery reads a checkpoint into a single-process model (``loading.load_model``), transforms the
plain ``state_dict``, fills a freshly built target model and saves it as a new dist-checkpoint
with its own ``recipe.json``; the result loads into any TP/PP layout with ``checkpoint.load=OUT``.
The local layer spec is used throughout (its ``state_dict`` names each norm separately), which
keeps the slicing code spec-independent; both specs write identical dist-checkpoint keys.
"""
from __future__ import annotations

import re
from pathlib import Path

import torch

from megatron_ext import checkpoint as ckpt
from megatron_ext import checkpoint_output
from megatron_ext.loading import SurgeryError
from recipes import Recipe

LAYER_KEY = re.compile(r"^decoder\.layers\.(\d+)\.(.+)$")


def tensor_items(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameter tensors by ``state_dict`` name (``_extra_state`` entries dropped)."""
    return {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor) and "_extra_state" not in k}


def load_tensors(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy ``tensors`` into ``model``; every parameter must be given, with its exact shape.

    Raises:
        SurgeryError: a name missing or unexpected, or a shape that differs.
    """
    target = tensor_items(model)
    missing = sorted(set(target) - set(tensors))
    unexpected = sorted(set(tensors) - set(target))
    if missing or unexpected:
        raise SurgeryError(f"state mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    with torch.no_grad():
        for name, value in target.items():
            if tuple(value.shape) != tuple(tensors[name].shape):
                raise SurgeryError(f"{name}: built {tuple(value.shape)}, computed {tuple(tensors[name].shape)}")
            value.copy_(tensors[name])


def load_layers_remapped(model: torch.nn.Module, iter_dir: Path, layer_map: list[int], source_layers: int) -> None:
    """Fill ``model`` straight from a checkpoint, new layer j ← source layer ``layer_map[j]``.

    The streaming path of DuS: the source model is never built. Each parameter is requested from
    dist-checkpointing as a one-layer slice (offset ``layer_map[j]``) of the source's stacked
    ``decoder.layers.*`` tensors, directly into the new model's storage. The reader holds one stored
    tensor at a time besides (``torch.load`` of its chunk): the embedding and output layer are read
    first, while the target's layer storage is still untouched, so the peak is the target plus one
    layer's largest tensor. A source layer used twice is read in a later pass, so no single load
    requests overlapping regions.
    """
    from megatron.core import dist_checkpointing
    from megatron.core.dist_checkpointing.mapping import ShardedTensor

    ckpt.check(iter_dir)  # whole and safe to read (checksums once per process)
    sharded = model.sharded_state_dict()
    targets = tensor_items(model)
    passes: list[dict] = []
    for name, param in targets.items():
        key = sharded[name].key
        match = LAYER_KEY.match(name)
        if match is None:  # embedding, final norm, output layer: first (see above)
            round_, request = 0, ShardedTensor.from_rank_offsets(key, param, replica_id=0)
        else:
            j = int(match.group(1))
            src = layer_map[j]
            round_ = 1 + layer_map[:j].count(src)  # 1 for a layer's first copy, 2 for its duplicate
            request = ShardedTensor.from_rank_offsets(key, param.unsqueeze(0), (0, src, source_layers), replica_id=0)
        while len(passes) <= round_:
            passes.append({})
        passes[round_][name] = request
    with torch.no_grad():
        for request in passes:
            loaded = dist_checkpointing.load(request, str(iter_dir), validate_access_integrity=False)
            for name in request:  # (the result also carries the checkpoint's common state)
                targets[name].copy_(loaded[name].reshape(targets[name].shape))


def _whole_swiglu(item):
    """A TP=1 SwiGLU ``ShardedTensorFactory`` as one ShardedTensor of the whole fc1 weight; other items as they are.

    Megatron-Core shards SwiGLU's fc1 as two chunks ``[gate; up]`` of one global tensor
    (``transformer/mlp.py: apply_swiglu_sharded_factory``). The chunks are views, and
    dist-checkpointing's writer clones every view of a larger storage before writing
    (``FileSystemWriterAsync.prepare_write_data``), all of them at once: 11 GB for the 11.5B Base.
    At TP=1 the two chunks are the whole tensor, so one ShardedTensor of it stores the same global
    tensor (any TP layout loads it: dist-checkpointing reads overlapping regions) without a copy.
    """
    from megatron.core.dist_checkpointing.mapping import ShardedTensor, ShardedTensorFactory

    if not isinstance(item, ShardedTensorFactory) or item.flattened_range is not None:
        return item
    parts = item.build()
    if not (isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, ShardedTensor) for p in parts)):
        return item
    w, v = parts
    axis = w.prepend_axis_num
    if (w.key != item.key or v.key != item.key or w.global_offset[axis] != 0 or w.axis_fragmentations[axis] != 2
            or w.local_shape[0] * 2 != item.data.shape[0]):
        return item  # not the TP=1 two-halves layout: keep Megatron's factory
    prepended = [(i, w.global_offset[i], w.axis_fragmentations[i]) for i in range(axis)]
    return ShardedTensor.from_rank_offsets(item.key, item.data, *prepended, replica_id=w.replica_id,
                                           prepend_axis_num=axis)


class SavingView:
    """``model`` as ``checkpoint.save`` sees it, with its sharded state dict free of copies (see
    :func:`_whole_swiglu`); everything else is the model's. For single-process (TP=1) saves."""

    def __init__(self, model: torch.nn.Module) -> None:
        self._model = model

    def sharded_state_dict(self, *args, **kwargs) -> dict:
        return {k: _whole_swiglu(v) for k, v in self._model.sharded_state_dict(*args, **kwargs).items()}

    def __getattr__(self, name: str):
        return getattr(self._model, name)


def save_output(output: str | Path, model: torch.nn.Module, recipe: Recipe, provenance: dict) -> Path:
    """Save ``model`` as ``OUTPUT/iter_0000000`` (+ ``latest``), model weights only, with ``recipe``.

    Memory: the model plus dist-checkpointing's transient of about one tensor (no copy of the
    SwiGLU weights: :class:`SavingView`).

    The commands check ``output`` before reading any weight (``checkpoint_output.check``); this is the
    same check again at save time, for a checkpoint written there meanwhile.

    Raises:
        OutputExistsError: ``output`` already holds a checkpoint (never overwritten), or is a file.
    """
    checkpoint_output.check(output, overwrite=None)
    return ckpt.save(Path(output), 0, SavingView(model), None, None, recipe,
                     {"step": 0, "consumed_samples": 0, **provenance})
