"""One way to put a checkpoint's weights into a model in this process.

Every tool that reads weights without training them goes through :func:`load_model`: checkpoint
surgery (``midm dus``, ``midm prune``), HF conversion (``midm convert``), forward-only inference
(``inference.py``) and the frozen teacher / reference model (``midm distill``, ``midm dpo``). The
model is built whole (pre- and post-process, PP=1: dist-checkpointing resolves whatever pipeline
layer offsets and TP shards the checkpoint was saved with) at the current tensor-parallel size,
*without* random initialisation (every weight is overwritten; at 11.5B the init alone takes
minutes), in the dtype the checkpoint stores its weights in unless told otherwise.

Memory, in the checkpoint's dtype (bf16 for the released recipes; fp32 on CPU for ``tiny``): one
copy of the model, plus ``dist_checkpointing``'s transient read buffers (about one tensor), plus
≈ 0.7 GB for torch itself. DuS with a SOLAR/explicit map streams layers straight into the target
(``state_io``), so the source is never materialised; ``midm convert to-hf`` never builds a model
(``ckpt_tensors`` reads it a layer at a time).
"""
from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import torch

from megatron_ext import checkpoint as ckpt
from midm.errors import MidmError
from recipes import ModelConfig, Recipe


class SurgeryError(MidmError, RuntimeError):
    """Bad input for a checkpoint-reading stage; the message says what to change."""


def device() -> torch.device:
    """The GPU of this rank when there is one, else the CPU."""
    return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")


def single_process_recipe(recipe: Recipe, model: ModelConfig | None = None) -> Recipe:
    """A copy of ``recipe`` laid out for one process (TP=PP=1, no GPU-only features, no FP8)."""
    out = copy.deepcopy(recipe)
    if model is not None:
        out.model = copy.deepcopy(model)
    out.parallel = replace(out.parallel, tensor_model_parallel_size=1, pipeline_model_parallel_size=1,
                           virtual_pipeline_model_parallel_size=None, context_parallel_size=1, tp_comm_overlap=False,
                           sequence_parallel=False, use_distributed_optimizer=False, overlap_grad_reduce=False,
                           overlap_param_gather=False)
    out.precision = replace(out.precision, fp8=None)
    return out


def init_single_process(seed: int = 1234) -> None:
    """Initialise TP=PP=1 groups in this (only) process.

    Raises:
        SurgeryError: when launched with several processes (torchrun/srun): these tools reshard
            through dist-checkpointing and need exactly one.
    """
    from megatron_ext import parallel

    env = parallel.detect_env()
    if env.world_size != 1:
        raise SurgeryError("checkpoint surgery runs in one process (it reshards through dist-checkpointing); "
                           "run it without torchrun/srun")
    parallel.initialize(1, 1, seed=seed)


def read_recipe(path: str | Path) -> Recipe:
    """The ``recipe.json`` of a checkpoint root or ``iter_*`` directory.

    Raises:
        CheckpointError: not a checkpoint, or its recipe is unreadable.
    """
    try:
        return ckpt.read_recipe(ckpt.resolve(path))
    except FileNotFoundError as err:
        raise ckpt.CheckpointError(f"{path}: {err}") from err


def build_for_load(recipe: Recipe, *, dtype: str | None = None, use_te: bool | None = False,
                   pg_collection=None, fused_kernels: bool = False) -> torch.nn.Module:
    """A whole ``GPTModel`` (all layers, embeddings and output) whose weights will come from a checkpoint.

    Laid out at PP=1 and the current tensor-parallel size (a lone process with no parallel state
    initialises TP=PP=1 itself). No random initialisation. ``dtype`` ("bf16" | "fp16" | "fp32") overrides the
    recipe's parameter dtype; ``use_te`` picks the layer spec (False: the local spec, whose
    ``state_dict`` names every norm; None: TE when available); ``pg_collection`` gives explicit
    process groups (a frozen model on a pipeline stage uses a one-rank pipeline group).
    """
    from megatron.core import parallel_state as ps

    from megatron_ext.model import build_model, transformer_config

    if not ps.model_parallel_is_initialized():
        init_single_process()
    r = copy.deepcopy(recipe)
    tp = ps.get_tensor_model_parallel_world_size()
    # Frozen and forward-only: no interleaving, no recompute, no TP comm overlap; CP as the running job.
    r.parallel = replace(r.parallel, pipeline_model_parallel_size=1, tensor_model_parallel_size=tp,
                         virtual_pipeline_model_parallel_size=None, tp_comm_overlap=False,
                         context_parallel_size=ps.get_context_parallel_world_size(),
                         sequence_parallel=r.parallel.sequence_parallel and tp > 1)
    r.perf = replace(r.perf, recompute_granularity="none", recompute_method=None, recompute_num_layers=None)
    if dtype is not None:
        r.precision = replace(r.precision, dtype=dtype)
    overrides: dict = {"perform_initialization": False}
    if not fused_kernels:
        overrides.update(bias_activation_fusion=False, masked_softmax_fusion=False, bias_dropout_fusion=False,
                         apply_rope_fusion=False, cross_entropy_loss_fusion=False)
    config = transformer_config(recipe=r, **overrides)
    model = build_model(recipe=r, config=config, pre_process=True, post_process=True, use_te=use_te,
                        pg_collection=pg_collection)
    return model.to(device())


def load_model(path: str | Path, *, recipe: Recipe | None = None, dtype: str | None = None,
               use_te: bool | None = False, pg_collection=None, overlapping: bool = False,
               frozen: bool = True, fused_kernels: bool = False) -> tuple[torch.nn.Module, Recipe]:
    """(model, recipe) with a checkpoint's weights, in eval mode — the one loader.

    Args:
        path: checkpoint root (follows ``latest``) or ``iter_*`` directory.
        recipe: the recipe to build (default: the checkpoint's ``recipe.json`` laid out for one
            process: no FP8, no sequence parallelism); its model geometry must be the checkpoint's.
        dtype: parameter dtype (default: the dtype the checkpoint stores its weights in when
            ``recipe`` is None — the returned recipe says so —, else the recipe's ``precision.dtype``,
            e.g. the training precision a frozen teacher computes in).
        overlapping: several ranks of one TP rank load the same shards (e.g. every pipeline stage
            loads a whole frozen teacher); disables dist-checkpointing's access-integrity check.
        frozen: ``requires_grad=False`` on every parameter.

    Raises:
        CheckpointError: not a checkpoint, or its tensors do not fit the recipe's geometry.
    """
    iter_dir = ckpt.resolve(path)
    if recipe is None:
        recipe = single_process_recipe(read_recipe(iter_dir))
        if dtype is None:  # the checkpoint's own dtype, whatever its recipe says (no fp32 upcast)
            from megatron_ext.ckpt_tensors import checkpoint_dtype

            dtype = checkpoint_dtype(iter_dir)
            recipe.precision = replace(recipe.precision, dtype=dtype)
    model = build_for_load(recipe, dtype=dtype, use_te=use_te, pg_collection=pg_collection,
                           fused_kernels=fused_kernels)
    ckpt.load_model_only(iter_dir, model, validate_access_integrity=not overlapping)
    if frozen:
        for param in model.parameters():
            param.requires_grad_(False)
    model.eval()
    return model, recipe
