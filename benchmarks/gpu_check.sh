#!/usr/bin/env bash
# Prove the GPU path on one GPU (≤ 8 minutes on an H100/H200) and print one JSON line.
#
#   benchmarks/gpu_check.sh [--wheels DIR] [benchmarks/gpu_check.py options: --steps N --layers N --skip-te …]
#
# Tier (a) always runs: Megatron-Core's local layer spec, a reduced midm_mini in bf16 with Megatron DDP
# and the distributed optimizer, checkpoint → Hugging Face → transformers, peak memory vs the planner.
# Tier (b) adds the Transformer Engine spec (bf16, FP8 tensorwise and delayed, TE vs local logits) when
# TE imports. The JSON says which tier ran (benchmarks/gpu_check.py documents every field).
#
# Works on a bare CUDA node with only Python 3.12 + PyTorch and no network: Megatron-Core,
# transformers and the rest come from a wheel folder built elsewhere by benchmarks/gpu_wheels.sh
# (default ./gpu_wheels), unpacked into a scratch directory put first on PYTHONPATH — nothing is
# installed into the node's Python. In an NGC PyTorch container that already has them, no wheels are
# needed. Exit status: gpu_check.py's (0 all checks passed, 1 a check failed, 2 no GPU / no wheels).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
wheels="$repo/gpu_wheels"
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --wheels) wheels="$2"; shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done

work="$(mktemp -d "${TMPDIR:-/tmp}/midm_gpu_check.XXXXXX")"
missing="$("$python" -W ignore - 2>/dev/null <<'PY'
import importlib
missing = []
for name in ("megatron.core", "transformers", "psutil"):
    try:
        importlib.import_module(name)
    except ImportError:
        missing.append(name)
print(" ".join(missing))
PY
)"
if [[ -n "$missing" ]]; then
  shopt -s nullglob
  found=("$wheels"/*.whl)
  if [[ ${#found[@]} -eq 0 ]]; then
    echo "gpu_check: $missing not importable and no wheels in $wheels; build them with benchmarks/gpu_wheels.sh" \
         "on a machine with network access and pass --wheels DIR" >&2
    exit 2
  fi
  # A wheel is a zip archive laid out for site-packages: unpacking it is an install without pip.
  for wheel in "${found[@]}"; do
    "$python" -m zipfile -e "$wheel" "$work/site"
  done
  export PYTHONPATH="$work/site${PYTHONPATH:+:$PYTHONPATH}"
  echo "gpu_check: using ${#found[@]} wheels from $wheels for: $missing" >&2
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
cd "$repo"
rc=0
"$python" benchmarks/gpu_check.py --workdir "$work/run" ${args[@]+"${args[@]}"} || rc=$?
rm -rf "$work"  # unpacked wheels and the run's checkpoints: nothing is left in $TMPDIR
exit "$rc"
