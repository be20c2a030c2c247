"""The planner's activation estimate against memory measured on CPU in the real Megatron-Core GPTModel.

``tiny`` (local spec, fp32) at several sequence lengths and with each recompute setting: the estimate of
what the forward leaves for backward (layers, logits, the attention-score buffer) and of the forward +
backward peak must be within TOLERANCE of what ``tests/recipes/memory_probe.py`` measures. Measured here:
every case within 1.3% (the estimate omits the shared causal mask and a few scalars). The ``midm distill``
loss is measured the same way for the planner's teacher/KD terms.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from recipes import get_recipe
from recipes.memory import layout_of, memory_per_gpu
from tests.conftest import REPO

TOLERANCE = 0.03
SEQ_LENGTHS = [64, 128, 256]
KD_DTYPES = ["fp32", "bf16"]

RECOMPUTE = {
    "none": [],
    "selective-core_attn": ["perf.recompute_granularity=selective"],
    "selective-mlp": ["perf.recompute_granularity=selective", "perf.recompute_modules=mlp"],
    "full-uniform-1": ["perf.recompute_granularity=full", "perf.recompute_method=uniform",
                       "perf.recompute_num_layers=1"],
    "full-uniform-3": ["perf.recompute_granularity=full", "perf.recompute_method=uniform",
                       "perf.recompute_num_layers=3"],
    "full-block-2": ["perf.recompute_granularity=full", "perf.recompute_method=block", "perf.recompute_num_layers=2"],
}


@pytest.fixture(scope="module")
def measured() -> dict[str, list[dict]]:
    """All cases measured in one subprocess (one Megatron import)."""
    cases = [{"recipe": "tiny", "overrides": RECOMPUTE[name], "seq_lengths": SEQ_LENGTHS if name == "none" else [128]}
             for name in RECOMPUTE]
    cases += [{"kd": dtype, "tokens": 256, "vocab": 4096} for dtype in KD_DTYPES]
    out = subprocess.run([sys.executable, "-m", "tests.recipes.memory_probe", json.dumps(cases)], cwd=REPO,
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    assert out.returncode == 0, out.stderr[-3000:]
    records = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    names = list(RECOMPUTE) + [f"kd-{d}" for d in KD_DTYPES]
    return {name: [r for r in records if names[r["case"]] == name] for name in names}


@pytest.mark.parametrize("case", list(RECOMPUTE))
def test_activation_estimate_matches_measured_memory(case, measured):
    assert measured[case], f"no measurement for {case}"
    for record in measured[case]:
        recipe = get_recipe("tiny", [f"data.seq_length={record['seq_length']}", *RECOMPUTE[case]])
        (stage,) = memory_per_gpu(recipe, layout_of(recipe, 1), spec="local")
        stored = stage.stored_activations
        peak = stored + stage.transient
        print(case, record, f"estimate stored {stored:.0f} peak {peak:.0f}")
        assert stored == pytest.approx(record["stored"], rel=TOLERANCE), case
        assert peak == pytest.approx(record["peak"], rel=TOLERANCE), case


@pytest.mark.parametrize("dtype", KD_DTYPES)
def test_distillation_loss_terms_match_measured_memory(dtype, measured):
    """recipes/memory.py's ``midm distill`` head: 2 fp32 vocab tensors kept, 4 (fp32) / 5 (bf16) more at the peak."""
    from recipes.memory import _DTYPE_BYTES  # the planner's own byte table

    (record,) = measured[f"kd-{dtype}"]
    unit = 4 * record["tokens"] * record["vocab"]  # one fp32 [tokens, V] tensor
    e = _DTYPE_BYTES[dtype]
    assert record["stored"] == pytest.approx(2 * unit, rel=TOLERANCE)
    extra = (16 + (4 if e < 4 else 0)) * record["tokens"] * record["vocab"]  # memory.py's KD transient minus logits
    assert record["forward_peak"] - record["stored"] == pytest.approx(extra, rel=TOLERANCE)
