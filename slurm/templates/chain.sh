#!/bin/bash
# Stage @@STAGE@@ of recipe @@RECIPE@@, rendered by `midm slurm render`: @@COUNT@@ Slurm jobs, one per
# step of the filter pipeline (data_prep/plan.py), each submitted with --dependency=afterok on the
# one before it, so exact + MinHash dedup and the quality top-fraction cut see every task's output,
# not one shard's. `midm slurm submit @@STAGE@@ …` (same flags) submits exactly these scripts; or run
# this file on a submit host. A failed rank cancels the rest of the chain (--kill-on-invalid-dep);
# submitting again resumes: finished ranks are skipped.
set -euo pipefail
midm_submit() { sbatch --parsable "$@" | cut -d';' -f1; }
@@JOBS@@
echo "$midm_job_@@LAST@@"
