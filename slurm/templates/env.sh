# Shared environment for every midm Slurm job (pretrain, cpt, prune, distill, convert, eval, data).
#
# Sourced by the batch shell of each rendered script before anything is launched; srun passes the
# environment on to every task (and pyxis into the container). Copy this file, edit it for your
# site and render with `midm slurm render … --env-file /path/to/site_env.sh`.
# Every setting uses ${VAR:-default}, so a value already exported when you submit wins.

# ---- container (pyxis/enroot) ---------------------------------------------------------------
# Image for `srun --container-image`; empty = run on the host. `midm slurm render --container IMG`
# sets it for one job. Mounts are `src:dst[:flags]` joined by commas.
# The default mounts the job's working directory and, when it lies elsewhere, its run directory.
export MIDM_CONTAINER_IMAGE="${MIDM_CONTAINER_IMAGE:-}"
if [[ -z "${MIDM_CONTAINER_MOUNTS:-}" ]]; then
  MIDM_CONTAINER_MOUNTS="${MIDM_WORKDIR:-$PWD}:${MIDM_WORKDIR:-$PWD}"
  case "${MIDM_RUN_DIR:-}/" in
    /|"${MIDM_WORKDIR:-$PWD}"/*) ;;
    *) MIDM_CONTAINER_MOUNTS+=",$MIDM_RUN_DIR:$MIDM_RUN_DIR" ;;
  esac
fi
export MIDM_CONTAINER_MOUNTS

# ---- caches: on node-local or shared scratch, never in $HOME on a 64-node job -------------
export MIDM_CACHE_DIR="${MIDM_CACHE_DIR:-${TMPDIR:-/tmp}/midm-cache-${USER:-$(id -un)}}"
export HF_HOME="${HF_HOME:-$MIDM_CACHE_DIR/huggingface}"
export TRITON_CACHE_DIR="${TRITON_CACHE_DIR:-$MIDM_CACHE_DIR/triton}"
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-$MIDM_CACHE_DIR/inductor}"
export CUDA_CACHE_PATH="${CUDA_CACHE_PATH:-$MIDM_CACHE_DIR/nv}"
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}"  # compute nodes usually have no internet
export TOKENIZERS_PARALLELISM="${TOKENIZERS_PARALLELISM:-false}"

# ---- CPU threads: one task's share of the node (srun gets --cpus-per-task explicitly) ----------
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"

# ---- NCCL ----------------------------------------------------------------------------------
export NCCL_DEBUG="${NCCL_DEBUG:-WARN}"
export NCCL_IB_TIMEOUT="${NCCL_IB_TIMEOUT:-22}"           # ride out short IB link flaps
export NCCL_IB_RETRY_CNT="${NCCL_IB_RETRY_CNT:-10}"
export NCCL_NVLS_ENABLE="${NCCL_NVLS_ENABLE:-0}"          # NVLink SHARP needs IMEX/fabric manager setup
export TORCH_NCCL_ASYNC_ERROR_HANDLING="${TORCH_NCCL_ASYNC_ERROR_HANDLING:-1}"  # a dead rank ends the job
export TORCH_NCCL_AVOID_RECORD_STREAMS="${TORCH_NCCL_AVOID_RECORD_STREAMS:-1}"
# Site-specific; uncomment and set for your fabric:
# export NCCL_SOCKET_IFNAME=bond0
# export NCCL_IB_HCA=mlx5_0,mlx5_3,mlx5_4,mlx5_5,mlx5_6,mlx5_9,mlx5_10,mlx5_11

# ---- UCX (used by NCCL's IB plugin and by MPI/PMI inside containers) -------------------------
export UCX_TLS="${UCX_TLS:-rc,sm,self}"
export UCX_NET_DEVICES="${UCX_NET_DEVICES:-}"
[[ -n "$UCX_NET_DEVICES" ]] || unset UCX_NET_DEVICES

# ---- Megatron-Core / Transformer Engine ------------------------------------------------------
# TP communication overlap needs kernels to be queued in issue order.
export CUDA_DEVICE_MAX_CONNECTIONS="${CUDA_DEVICE_MAX_CONNECTIONS:-1}"
export NVTE_FWD_LAYERNORM_SM_MARGIN="${NVTE_FWD_LAYERNORM_SM_MARGIN:-16}"
export NVTE_BWD_LAYERNORM_SM_MARGIN="${NVTE_BWD_LAYERNORM_SM_MARGIN:-16}"
export NVTE_FUSED_ATTN="${NVTE_FUSED_ATTN:-1}"
export NVTE_FLASH_ATTN="${NVTE_FLASH_ATTN:-1}"
export PYTHONUNBUFFERED=1  # logs reach the job's .out file as they happen
