"""The CPU compatibility layer must fail loudly when Megatron-Core moves under it."""
from __future__ import annotations

import subprocess
import sys

from tests.megatron_ext.conftest import run_env

CHECK = """
import importlib, sys
from megatron_ext import cpu_compat
cpu_compat.self_check()
module_name, attr = cpu_compat.PATCHED_SYMBOLS[{index}]
delattr(importlib.import_module(module_name), attr)
try:
    cpu_compat.self_check()
except RuntimeError as err:
    print("LOUD:", err)
"""

ENABLED = """
import torch
from megatron_ext import cpu_compat
assert cpu_compat.maybe_enable() is True
x = torch.zeros(3, device="cuda")           # redirected to the CPU
assert x.device.type == "cpu" and torch.cuda.current_device() == "cpu"
torch.cuda.manual_seed(3); a = torch.cuda.get_rng_state()
torch.cuda.manual_seed(3); assert torch.equal(a, torch.cuda.get_rng_state())
from megatron.core.transformer.utils import get_default_causal_mask
assert get_default_causal_mask(3).tolist() == [[False, True, True], [False, False, True], [False, False, False]]
print("ok")
"""


def test_self_check_names_a_missing_symbol():
    for index in range(2):
        out = subprocess.run([sys.executable, "-c", CHECK.format(index=index)], capture_output=True, text=True,
                             env=run_env(), check=True).stdout
        assert "LOUD: megatron_ext.cpu_compat is out of date" in out


def test_enable_redirects_cuda_to_cpu():
    out = subprocess.run([sys.executable, "-c", ENABLED], capture_output=True, text=True, env=run_env())
    assert out.stdout.strip().endswith("ok"), out.stderr[-3000:]
