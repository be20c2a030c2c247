"""The one place where Megatron-Core is taught to run without CUDA.

Megatron-Core assumes a GPU in a handful of spots: the tensor-parallel RNG tracker reads and writes
CUDA RNG state, pipeline p2p/DDP/grad-norm code allocates buffers with ``device="cuda"`` or
``torch.cuda.current_device()``, stream and synchronize calls, a CUDA-typed assert in gradient
clipping, and the default causal mask. :func:`enable` redirects exactly those to the CPU so that the
*same* model, optimizer, pipeline schedules and dist-checkpointing run on a laptop with gloo.

It is applied only when CUDA is absent (``maybe_enable``), and :func:`self_check` fails loudly
when a Megatron-Core upgrade moves one of the patched symbols, instead of letting a patch silently
stop applying. Nothing here changes numerics: it only changes where tensors live.
"""
from __future__ import annotations

import contextlib
import logging
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

_ENABLED = False
_MODE: "_CudaToCpuMode | None" = None

# Every Megatron-Core symbol this module patches; self_check() verifies each still exists.
PATCHED_SYMBOLS = (
    ("megatron.core.tensor_parallel.random", "_get_cuda_rng_state"),
    ("megatron.core.tensor_parallel.random", "_set_cuda_rng_state"),
    ("megatron.core.optimizer.clip_grads", "clip_grad_by_total_norm_fp32"),
    ("megatron.core.optimizer.optimizer", "clip_grad_by_total_norm_fp32"),
    ("megatron.core.transformer.utils", "get_default_causal_mask"),
)


def _to_cpu_device(value: Any) -> Any:
    if isinstance(value, torch.device) and value.type == "cuda":
        return torch.device("cpu")
    if isinstance(value, str) and value.startswith("cuda"):
        return "cpu"
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # positional ints are sizes, not devices
    return value


class _CudaToCpuMode(TorchFunctionMode):
    """Maps ``device="cuda"`` (and ``tensor.cuda()``) to the CPU inside torch calls."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in (torch.Tensor.cuda,):
            return args[0]
        if "device" in kwargs:
            kwargs["device"] = _to_cpu_device(kwargs["device"])
        if func in (torch.Tensor.to,) and args and len(args) > 1:
            args = (args[0], _to_cpu_device(args[1]), *args[2:])
        return func(*args, **kwargs)


def _cpu_clip_grad_by_total_norm_fp32(parameters, max_norm, total_norm, use_decoupled_grad=False):
    """Megatron's clip, minus its CUDA-typed assert: scale every fp32 grad by max_norm/total_norm."""
    if isinstance(parameters, torch.Tensor):
        parameters = [parameters]
    attr = "decoupled_grad" if use_decoupled_grad else "grad"
    grads = [getattr(p, attr).detach() for p in parameters if getattr(p, attr, None) is not None]
    clip_coeff = max_norm / (total_norm + 1.0e-6)
    if isinstance(clip_coeff, torch.Tensor):
        clip_coeff = clip_coeff.clamp_max(1.0)
        for g in grads:
            g.mul_(clip_coeff)
    elif clip_coeff < 1.0:
        for g in grads:
            g.mul_(clip_coeff)


def _cpu_default_causal_mask(sq: int) -> torch.Tensor:
    return torch.triu(torch.ones(sq, sq, dtype=torch.bool), diagonal=1)


def self_check() -> None:
    """Raise if Megatron-Core no longer has a symbol we patch (an upgrade changed the seams)."""
    import importlib

    missing = []
    for module_name, attr in PATCHED_SYMBOLS:
        module = importlib.import_module(module_name)
        if not hasattr(module, attr):
            missing.append(f"{module_name}.{attr}")
    if missing:
        raise RuntimeError("megatron_ext.cpu_compat is out of date with the installed megatron-core: missing "
                           + ", ".join(missing) + ". Re-check each patch against the new release.")


def enable() -> None:
    """Patch torch.cuda and Megatron-Core for CPU execution (idempotent)."""
    global _ENABLED, _MODE
    if _ENABLED:
        return
    self_check()
    import megatron.core.optimizer.clip_grads as clip_grads
    import megatron.core.optimizer.optimizer as optimizer
    import megatron.core.tensor_parallel.random as tp_random
    import megatron.core.transformer.utils as transformer_utils

    torch.cuda.current_device = lambda: "cpu"  # used as a device argument throughout mcore
    torch.cuda.get_rng_state = lambda device="cuda": torch.get_rng_state()
    torch.cuda.set_rng_state = lambda state, device="cuda": torch.set_rng_state(state)
    # torch.manual_seed itself calls torch.cuda.manual_seed_all, so seed the CPU generator directly.
    torch.cuda.manual_seed = lambda seed: torch.default_generator.manual_seed(int(seed))
    torch.cuda.manual_seed_all = lambda seed: None
    torch.cuda.synchronize = lambda device=None: None
    torch.cuda.empty_cache = lambda: None
    torch.cuda.current_stream = lambda device=None: _NullStream()
    torch.cuda.Stream = _NullStream
    torch.cuda.stream = lambda stream=None: contextlib.nullcontext()

    tp_random._get_cuda_rng_state = lambda device="cuda", clone=False, graph_safe=False: torch.get_rng_state()
    tp_random._set_cuda_rng_state = lambda new_state, device=-1, graph_safe=False: torch.set_rng_state(new_state)
    clip_grads.clip_grad_by_total_norm_fp32 = _cpu_clip_grad_by_total_norm_fp32
    optimizer.clip_grad_by_total_norm_fp32 = _cpu_clip_grad_by_total_norm_fp32
    transformer_utils.get_default_causal_mask = _cpu_default_causal_mask
    # The tracker warns whenever the (shared, CPU) generator moves inside a fork — expected here.
    logging.getLogger("megatron.core.tensor_parallel.random").setLevel(logging.ERROR)

    _MODE = _CudaToCpuMode()
    _MODE.__enter__()
    _ENABLED = True


def maybe_enable() -> bool:
    """Enable the CPU layer when CUDA is unavailable; returns whether it is active."""
    if not torch.cuda.is_available():
        enable()
    return _ENABLED


def is_enabled() -> bool:
    return _ENABLED


class _NullStream:
    """Stands in for torch.cuda.Stream on CPU: every wait/record is a no-op."""

    def __init__(self, *args, **kwargs):
        pass

    def wait_stream(self, other):
        return None

    def record_event(self, event=None):
        return None

    def synchronize(self):
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
