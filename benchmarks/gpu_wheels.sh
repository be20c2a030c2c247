#!/usr/bin/env bash
# Build the wheel folder benchmarks/gpu_check.sh needs on a bare GPU node (PyTorch only, no network).
#
#   benchmarks/gpu_wheels.sh [OUT_DIR]        (default ./gpu_wheels; run on any machine with network, CPU is fine)
#
# Wheels for CPython 3.12 on manylinux x86_64, at the versions pinned in requirements/constraints.txt:
# megatron-core without its torch requirement (the node brings PyTorch), and transformers (HF load),
# psutil (dist-checkpointing), numpy and packaging with their dependencies. Prints each wheel's size and
# fails when the folder exceeds 64 MiB. Transformer Engine is not included: its CUDA wheels are far
# larger (use an NGC container for tier (b)). Set WHEEL_PLATFORM (e.g. manylinux_2_28_aarch64) for ARM nodes.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo/gpu_wheels}"
python="${PYTHON:-python3}"
limit=$((64 * 1024 * 1024))
if [[ -n "${WHEEL_PLATFORM:-}" ]]; then
  platforms=(--platform "$WHEEL_PLATFORM")
else
  platforms=(--platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_24_x86_64
             --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64)
fi
pip_download=("$python" -m pip download --quiet --only-binary=:all: --python-version 3.12 --implementation cp
              --abi cp312 "${platforms[@]}" -c "$repo/requirements/constraints.txt" -d "$out")

rm -rf "$out"
mkdir -p "$out"
"${pip_download[@]}" --no-deps megatron-core
"${pip_download[@]}" transformers psutil numpy packaging

total=0
for wheel in "$out"/*.whl; do
  size=$(stat -c %s "$wheel")
  total=$((total + size))
  printf '%10d  %s\n' "$size" "$(basename "$wheel")"
done
printf '%10d  total (%s MiB of 64)\n' "$total" "$(( (total + 1048575) / 1048576 ))"
if (( total > limit )); then
  echo "gpu_wheels: $out is over 64 MiB" >&2
  exit 1
fi
