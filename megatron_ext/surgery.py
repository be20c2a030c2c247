"""Shared plumbing for checkpoint surgery (``midm dus`` and ``midm prune``).

Both stages follow one design: read the source dist-checkpoint into a *single-process* model
(TP=1, PP=1 — dist-checkpointing reshards from whatever layout it was saved with, so pipeline
layer offsets and tensor-parallel shards are resolved by Megatron-Core itself), transform the
plain ``state_dict``, build the target model, and save it as a new dist-checkpoint with its own
``recipe.json``. The result then loads into any TP/PP layout with ``checkpoint.load=OUT``.

Memory, in the checkpoint's dtype (bf16 for the released recipes; fp32 on CPU for ``tiny``):
DuS with a SOLAR/explicit map streams layers straight into the target (``load_layers_remapped``,
≈ 23 GB for 8B → 11.5B); ``scored:L`` additionally loads the 8B source (≈ 16 GB) for its forward
passes; Base → Mini pruning holds teacher + student (≈ 23 + 5 GB) plus calibration activations —
on the GPU when there is one, else in host RAM. Plan 32–64 GB of host RAM for full-scale runs.

The model is always built with Megatron's *local* layer spec here: its ``state_dict`` names each
norm separately (``input_layernorm.weight``), which keeps the slicing code spec-independent, and
both specs write identical dist-checkpoint keys.
"""
from __future__ import annotations

import copy
import json
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from megatron_ext import checkpoint as ckpt
from recipes import ModelConfig, Recipe

_LAYER = re.compile(r"^decoder\.layers\.(\d+)\.(.+)$")


class SurgeryError(RuntimeError):
    """Bad input for a surgery stage; the message says what to change."""


def device() -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


def single_process_recipe(recipe: Recipe, model: ModelConfig | None = None) -> Recipe:
    """A copy of ``recipe`` laid out for one process (TP=PP=1, no GPU-only features, no FP8)."""
    out = copy.deepcopy(recipe)
    if model is not None:
        out.model = copy.deepcopy(model)
    out.parallel = replace(out.parallel, tensor_model_parallel_size=1, pipeline_model_parallel_size=1,
                           sequence_parallel=False, use_distributed_optimizer=False, overlap_grad_reduce=False,
                           overlap_param_gather=False)
    out.precision = replace(out.precision, fp8=None)
    return out


def init_single_process(seed: int = 1234) -> None:
    from megatron_ext import parallel

    env = parallel.detect_env()
    if env.world_size != 1:
        raise SurgeryError("checkpoint surgery runs in one process (it reshards through dist-checkpointing); "
                           "run it without torchrun/srun")
    parallel.initialize(1, 1, seed=seed)


def build_single(recipe: Recipe, model_cfg: ModelConfig | None = None):
    """A GPTModel (local spec, fused kernels off) for ``recipe`` laid out for one process."""
    from megatron_ext.model import build_model, transformer_config

    single = single_process_recipe(recipe, model_cfg)
    # Every weight is overwritten from a checkpoint, so skip random initialisation (minutes at 11.5B).
    config = transformer_config(recipe=single, bias_activation_fusion=False, masked_softmax_fusion=False,
                                bias_dropout_fusion=False, apply_rope_fusion=False, perform_initialization=False)
    model = build_model(recipe=single, config=config, pre_process=True, post_process=True, use_te=False)
    return model.to(device())


def read_source_recipe(path: str | Path) -> Recipe:
    try:
        return ckpt.read_recipe(ckpt.resolve(path))
    except (ckpt.CheckpointError, FileNotFoundError) as err:
        raise SurgeryError(str(err)) from err


def load_source(path: str | Path) -> tuple[Recipe, torch.nn.Module, Path]:
    """(recipe, model, iter_dir) of a checkpoint root or ``iter_*`` directory, in one process."""
    recipe = read_source_recipe(path)
    iter_dir = ckpt.resolve(path)
    model = build_single(recipe)
    ckpt.load_model_only(iter_dir, model)
    model.eval()
    return recipe, model, iter_dir


def tensor_items(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's parameter tensors by ``state_dict`` name (``_extra_state`` entries dropped)."""
    return {k: v for k, v in model.state_dict().items() if isinstance(v, torch.Tensor) and "_extra_state" not in k}


def load_tensors(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy ``tensors`` into ``model``; every parameter must be given, with its exact shape."""
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
    ``decoder.layers.*`` tensors, directly into the new model's storage — peak memory is the
    target model alone (23 GB instead of 39 GB for 8B → 11.5B in bf16). A source layer used twice
    is read in a second pass, so no single load requests overlapping regions.
    """
    from megatron.core import dist_checkpointing
    from megatron.core.dist_checkpointing.mapping import ShardedTensor

    ckpt.check(iter_dir)  # whole and safe to read (checksums once per process)
    sharded = model.sharded_state_dict()
    targets = tensor_items(model)
    passes: list[dict] = []
    for name, param in targets.items():
        key = sharded[name].key
        match = _LAYER.match(name)
        if match is None:
            round_, request = 0, ShardedTensor.from_rank_offsets(key, param, replica_id=0)
        else:
            j = int(match.group(1))
            src = layer_map[j]
            round_ = layer_map[:j].count(src)  # 0 for a layer's first copy, 1 for its duplicate
            request = ShardedTensor.from_rank_offsets(key, param.unsqueeze(0), (0, src, source_layers), replica_id=0)
        while len(passes) <= round_:
            passes.append({})
        passes[round_][name] = request
    with torch.no_grad():
        for request in passes:
            loaded = dist_checkpointing.load(request, str(iter_dir), validate_access_integrity=False)
            for name in request:  # (the result also carries the checkpoint's common state)
                targets[name].copy_(loaded[name].reshape(targets[name].shape))


def save_output(output: str | Path, model: torch.nn.Module, recipe: Recipe, provenance: dict) -> Path:
    """Save ``model`` as ``OUTPUT/iter_0000000`` (+ ``latest``), model weights only, with ``recipe``."""
    output = Path(output)
    if (output / ckpt.LATEST).exists():
        raise SurgeryError(f"{output} already holds a checkpoint; choose a new --output directory")
    return ckpt.save(output, 0, model, None, None, recipe, {"step": 0, "consumed_samples": 0, **provenance})


def model_overrides(recipe_name: str, model: ModelConfig) -> list[str] | None:
    """``--set model.k=v`` items that turn registered recipe ``recipe_name`` into ``model`` (None: unknown)."""
    from recipes import RecipeError, get_recipe

    try:
        base = get_recipe(recipe_name).model
    except RecipeError:
        return None
    return [f"model.{k}={getattr(model, k)}" for k in vars(model) if getattr(model, k) != getattr(base, k)]


def train_command(recipe_name: str, model: ModelConfig, output: str | Path) -> str:
    sets = model_overrides(recipe_name, model) or []
    return " ".join(["midm train --recipe", recipe_name, *(f"--set {s}" for s in sets),
                     f"--set checkpoint.load={output}"])


def write_summary(output: str | Path, name: str, summary: dict) -> Path:
    path = Path(output) / name
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return path


# ---------------------------------------------------------------- calibration data
def calibration_tokens(prefix: str, samples: int, seq_length: int, vocab_size: int, seed: int = 1234) -> torch.Tensor:
    """``[samples, seq_length]`` token windows drawn from a Megatron ``.bin/.idx`` prefix.

    Windows start at the beginning of documents picked uniformly at random (seeded) and run on
    through the following documents until full, so every sample is real, contiguous text; only
    the documents touched are read (memory-mapped), which keeps this cheap on huge prefixes.
    """
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    from megatron_ext.data import DataError, check_prefix

    try:
        num_docs = check_prefix(prefix, vocab_size)
    except DataError as err:
        raise SurgeryError(f"--calib: {err}") from err
    dataset = IndexedDataset(prefix, mmap=True)
    total = int(np.sum(dataset.index.sequence_lengths, dtype=np.int64))
    if total < seq_length:
        raise SurgeryError(f"--calib {prefix}: {total} tokens, fewer than one window of {seq_length}")
    rng = np.random.default_rng(seed)
    starts = rng.choice(num_docs, size=samples, replace=samples > num_docs)
    out = torch.empty(samples, seq_length, dtype=torch.long)
    for row, doc in enumerate(starts):
        pieces, have, d = [], 0, int(doc)
        while have < seq_length:
            piece = np.asarray(dataset[d % num_docs], dtype=np.int64)[: seq_length - have]
            pieces.append(piece)
            have += len(piece)
            d += 1
        out[row] = torch.from_numpy(np.concatenate(pieces))
    return out


def iterate_batches(tokens: torch.Tensor, micro_batch_size: int) -> Iterator[torch.Tensor]:
    for i in range(0, tokens.shape[0], micro_batch_size):
        yield tokens[i:i + micro_batch_size]


@torch.no_grad()
def forward(model: torch.nn.Module, tokens: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Logits ``[b, s, V]`` (or per-token losses ``[b, s]`` when ``labels`` is given) on one process."""
    dev = device()
    tokens = tokens.to(dev)
    positions = torch.arange(tokens.shape[1], device=dev).unsqueeze(0).expand_as(tokens)
    return model(tokens, positions, attention_mask=None, labels=None if labels is None else labels.to(dev))


def lm_loss(model: torch.nn.Module, tokens: torch.Tensor, micro_batch_size: int) -> float:
    """Mean next-token cross-entropy of ``model`` on calibration windows."""
    total, count = 0.0, 0
    for batch in iterate_batches(tokens, micro_batch_size):
        losses = forward(model, batch[:, :-1], labels=batch[:, 1:])
        total += float(losses.float().sum())
        count += losses.numel()
    return total / max(count, 1)


class Progress:
    """One line per event on stdout, with elapsed seconds (long stages must show progress)."""

    def __init__(self, stage: str):
        self.stage, self.t0 = stage, time.perf_counter()

    def __call__(self, message: str) -> None:
        print(f"[midm {self.stage}] {time.perf_counter() - self.t0:7.1f}s  {message}", flush=True)
