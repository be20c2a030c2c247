
# ---- rendezvous -------------------------------------------------------------------------------
# Every rank reads RANK/WORLD_SIZE/LOCAL_RANK from SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID (one task
# per GPU) or from torchrun (one task per node); both meet at the allocation's first node.
MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
MASTER_PORT=$(( 20000 + SLURM_JOB_ID % 20000 ))
export MASTER_ADDR MASTER_PORT
# Leftovers from the submitting shell (sbatch exports it) would override the per-task SLURM_* ranks.
unset RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE GROUP_RANK
echo "[midm] rendezvous at ${MASTER_ADDR}:${MASTER_PORT}, @@WORLD_DESC@@"

# ---- preemption and time limits ---------------------------------------------------------------
# `#SBATCH --signal=B:USR1@N` wakes this shell N = @@SIGNAL_LEAD@@ s before the time limit (TERM arrives on
# preemption or scancel). The step is always sent USR1, never TERM, because srun answers TERM by
# killing its step. Each rank finishes its step, all save a checkpoint and exit 75; the job then
# requeues itself and `--resume auto` continues from that checkpoint.
MIDM_MAX_REQUEUES=@@MAX_REQUEUES@@
midm_signal=""
midm_step_pid=""
midm_on_signal() {
  midm_signal="$1"
  echo "[midm] $(date -u +%FT%TZ) got SIG$1: asking the step to checkpoint and stop"
  if [[ -n "$midm_step_pid" ]]; then kill -s USR1 "$midm_step_pid" 2>/dev/null || true; fi
}
trap 'midm_on_signal USR1' USR1
trap 'midm_on_signal TERM' TERM

midm_requeue() {
  if (( ${SLURM_RESTART_COUNT:-0} >= MIDM_MAX_REQUEUES )); then
    echo "[midm] not requeueing: restarted ${SLURM_RESTART_COUNT:-0} times already (limit $MIDM_MAX_REQUEUES)"
    exit 75
  fi
  echo "[midm] $(date -u +%FT%TZ) requeueing job $SLURM_JOB_ID; it resumes from the latest checkpoint"
  if ! scontrol requeue "$SLURM_JOB_ID"; then
    echo "[midm] scontrol requeue failed (JobRequeue disabled?): resubmit this script to resume"
    exit 75
  fi
  exit 0
}
@@PRESTEP@@
# ---- the training step (in the background, so the traps above run while it works) --------------
@@LAUNCH@@ &
midm_step_pid=$!
while :; do
  midm_rc=0
  wait "$midm_step_pid" || midm_rc=$?
  # A trapped signal interrupts `wait`; keep waiting while the step is still there.
  if kill -0 "$midm_step_pid" 2>/dev/null; then continue; fi
  break
done
if (( midm_rc > 128 )); then  # interrupted, and the step ended meanwhile: collect its real status
  midm_again=0
  wait "$midm_step_pid" 2>/dev/null || midm_again=$?
  if (( midm_again != 127 )); then midm_rc=$midm_again; fi
fi
echo "[midm] $(date -u +%FT%TZ) step exited with status $midm_rc"
if (( midm_rc == 0 )); then
  exit 0
fi
# 75 = checkpointed, not finished. torchrun cannot pass 75 through, so a signalled step that failed
# is requeued as well: it resumes from its latest checkpoint either way.
if (( midm_rc == 75 )) || [[ -n "$midm_signal" ]]; then
  midm_requeue
fi
exit "$midm_rc"
