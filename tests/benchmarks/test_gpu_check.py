"""``benchmarks/gpu_check.sh`` on CPU: the tier-(a) path end to end at tiny scale (``--cpu``).

The GPU-only parts — bf16, the distributed optimizer, CUDA peak memory, Transformer Engine (tier b) and the
wheel unpacking on a bare node — cannot run here; everything else the script calls does: training with the
real Trainer, the dist-checkpoint, HF conversion, loading with ``transformers`` and the logits comparison,
the planner's estimate for the same run, and the SFT check (``midm data sft`` packing + ``SFTTrainer`` steps).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_gpu_check_cpu_rehearsal(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1",
           "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([str(REPO / "benchmarks" / "gpu_check.sh"), "--cpu", "--steps", "4"], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["tier"] == "a" and result["ok"] and result["device"] == "cpu"
    assert result["loss_falls"] and result["tokens_per_s"] > 0 and result["planned_memory_gib"] > 0
    assert result["hf"]["loaded"] and result["hf"]["relative_logit_error"] < result["hf"]["tolerance"]
    sft = result["sft_packing"]  # `midm data sft` + SFTTrainer steps of tiny_sft: packed, accounted, learning
    assert sft["ok"] and sft["accounted"] and sft["conversations"] == 75 and sft["conversations_per_sample"] > 1
    assert sft["steps"] >= 3 and sft["loss_last"] < sft["loss_first"]


def test_gpu_check_refuses_without_gpu_or_cpu_flag():
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py")], capture_output=True, text=True,
                          env={**os.environ, "CUDA_VISIBLE_DEVICES": ""}, timeout=300)
    assert proc.returncode == 2 and "no CUDA device; use --cpu" in proc.stderr
