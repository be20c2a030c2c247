
# ---- one shard per array task -------------------------------------------------------------------
MIDM_SHARD="${SLURM_ARRAY_TASK_ID:?this script runs as a job array: submit it with sbatch --array}"
@@SHARD_VARS@@
echo "[midm] shard $MIDM_SHARD of array job ${SLURM_ARRAY_JOB_ID:-?}"
@@LAUNCH@@
echo "[midm] $(date -u +%FT%TZ) $MIDM_STAGE shard $MIDM_SHARD finished"
