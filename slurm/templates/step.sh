
# ---- one rank of step @@STEP@@ (@@TASKS@@ task(s)); the step before it finished on every rank ----
MIDM_RANK="${SLURM_ARRAY_TASK_ID:-0}"
echo "[midm] step @@STEP@@ rank $MIDM_RANK of @@TASKS@@ (job ${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-?}})"
@@LAUNCH@@
echo "[midm] $(date -u +%FT%TZ) $MIDM_STAGE step @@STEP@@ rank $MIDM_RANK finished"
