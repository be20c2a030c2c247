"""Process-group setup: torchrun, srun (one task per GPU) or a single plain process.

Rank, world size and rendezvous come from torchrun's variables when present, else from Slurm's
(``SLURM_PROCID``/``SLURM_NTASKS``/``SLURM_LOCALID`` with ``MASTER_ADDR``/``MASTER_PORT`` exported by
the batch script), else a world of one. NCCL on GPUs, gloo on CPU (with :mod:`cpu_compat`).
"""
from __future__ import annotations

import datetime
import os
import socket
from dataclasses import dataclass

import torch

from megatron_ext import cpu_compat
from midm.errors import MidmError


class LaunchError(MidmError, RuntimeError):
    """Started with a number of processes the requested layout cannot use (one line, exit 2 at the CLI)."""


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int


def detect_env() -> DistEnv:
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        return DistEnv(int(env["RANK"]), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env and int(env["SLURM_NTASKS"]) > 1:
        return DistEnv(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0)))
    return DistEnv(0, 1, 0)


def require_processes(tensor_model_parallel_size: int, pipeline_model_parallel_size: int, launch: str) -> DistEnv:
    """The launch environment when its world size is a multiple of TP × PP (Megatron's requirement).

    Checked before any process group exists, so a plain ``python -m midm …`` of a multi-process
    layout fails with the command to run instead of Megatron-Core's ``world_size (1) is not
    divisible by …``. ``launch`` is that command (e.g. ``torchrun --nproc_per_node 2 -m midm …``).

    Raises:
        LaunchError: a size below 1, or a world size that is not a multiple of TP × PP.
    """
    tp, pp = tensor_model_parallel_size, pipeline_model_parallel_size
    if tp < 1 or pp < 1:
        raise LaunchError(f"tensor- and pipeline-parallel sizes must be at least 1, got TP={tp} PP={pp}")
    env = detect_env()
    if env.world_size % (tp * pp):
        raise LaunchError(f"TP={tp} × PP={pp} needs {tp * pp} processes (or a multiple), this job has "
                          f"{env.world_size}: run `{launch}`")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def initialize(tensor_model_parallel_size: int = 1, pipeline_model_parallel_size: int = 1, seed: int = 1234,
               timeout_minutes: int = 30, context_parallel_size: int = 1,
               virtual_pipeline_model_parallel_size: int | None = None) -> DistEnv:
    """Initialise torch.distributed, Megatron's model-parallel groups and RNG trackers (idempotent).

    Rank order is Megatron-Core's default ``tp-cp-ep-dp-pp``: TP neighbours share a node, then CP, then DP.
    """
    from megatron.core import parallel_state, tensor_parallel

    on_gpu = torch.cuda.is_available()
    if not on_gpu:
        cpu_compat.enable()
    dist = detect_env()
    if not torch.distributed.is_initialized():
        if dist.world_size == 1:
            os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
            os.environ.setdefault("MASTER_PORT", str(_free_port()))
        elif "MASTER_ADDR" not in os.environ or "MASTER_PORT" not in os.environ:
            raise RuntimeError("MASTER_ADDR and MASTER_PORT must be set for a multi-process launch "
                               "(torchrun sets them; under srun export them in the batch script)")
        if on_gpu:
            torch.cuda.set_device(dist.local_rank)
        torch.distributed.init_process_group(
            backend="nccl" if on_gpu else "gloo", rank=dist.rank, world_size=dist.world_size,
            timeout=datetime.timedelta(minutes=timeout_minutes))
    if not parallel_state.model_parallel_is_initialized():
        parallel_state.initialize_model_parallel(
            tensor_model_parallel_size=tensor_model_parallel_size,
            pipeline_model_parallel_size=pipeline_model_parallel_size,
            virtual_pipeline_model_parallel_size=virtual_pipeline_model_parallel_size,
            context_parallel_size=context_parallel_size)
    else:
        current = (parallel_state.get_tensor_model_parallel_world_size(),
                   parallel_state.get_pipeline_model_parallel_world_size(),
                   parallel_state.get_context_parallel_world_size())
        if current != (tensor_model_parallel_size, pipeline_model_parallel_size, context_parallel_size):
            raise RuntimeError(f"model parallel already initialised as TP×PP×CP={current}; call destroy() first")
    tensor_parallel.model_parallel_cuda_manual_seed(seed)
    torch.manual_seed(seed + 100 * parallel_state.get_pipeline_model_parallel_rank())
    return dist


def destroy() -> None:
    from megatron.core import parallel_state

    if parallel_state.model_parallel_is_initialized():
        parallel_state.destroy_model_parallel()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def is_rank0() -> bool:
    return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


def is_last_rank() -> bool:
    return (not torch.distributed.is_initialized()
            or torch.distributed.get_rank() == torch.distributed.get_world_size() - 1)
