#!/bin/bash
@@SBATCH@@
#
# Stage @@STAGE@@ of recipe @@RECIPE@@, rendered by `midm slurm render`. Change the recipe or the
# flags and render again rather than editing this file. Values from recipes and flags below are
# single-quoted for the shell: nothing inside them is ever expanded or executed.
set -euo pipefail

MIDM_STAGE=@@STAGE_Q@@
MIDM_RUN_DIR=@@RUN_DIR@@
MIDM_LOG_DIR=@@LOG_DIR@@
MIDM_WORKDIR=@@WORKDIR@@
MIDM_PYTHON=@@PYTHON@@
@@CONTAINER_EXPORTS@@
cd "$MIDM_WORKDIR"
mkdir -p "$MIDM_RUN_DIR" "$MIDM_LOG_DIR"
# Shared site environment: NCCL/UCX/Transformer Engine settings, container image and mounts, caches.
source @@ENV_FILE@@
echo "[midm] $(date -u +%FT%TZ) job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}):" \
     "$MIDM_STAGE on ${SLURM_JOB_NODELIST:-?}"

# pyxis/enroot: every srun below runs inside the image when one is set.
MIDM_CONTAINER_ARGS=()
if [[ -n "$MIDM_CONTAINER_IMAGE" ]]; then
  MIDM_CONTAINER_ARGS=(--container-image="$MIDM_CONTAINER_IMAGE" --container-mounts="$MIDM_CONTAINER_MOUNTS"
                       --container-workdir="$MIDM_WORKDIR")
fi
