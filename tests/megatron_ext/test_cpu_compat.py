"""The CPU compatibility layer must redirect CUDA-only calls, and fail loudly when Megatron-Core moves under it."""
from __future__ import annotations

import subprocess
import sys

from tests.megatron_ext.conftest import run_env

SCRIPT = """
import importlib
import torch
from megatron_ext import cpu_compat

assert cpu_compat.maybe_enable() is True
x = torch.zeros(3, device="cuda")           # redirected to the CPU
assert x.device.type == "cpu" and torch.cuda.current_device() == "cpu"
torch.cuda.manual_seed(3); a = torch.cuda.get_rng_state()
torch.cuda.manual_seed(3); assert torch.equal(a, torch.cuda.get_rng_state())
from megatron.core.transformer.utils import get_default_causal_mask
assert get_default_causal_mask(3).tolist() == [[False, True, True], [False, False, True], [False, False, False]]
print("redirect ok")

for module_name, attr in cpu_compat.PATCHED_SYMBOLS:
    module = importlib.import_module(module_name)
    saved = getattr(module, attr)
    delattr(module, attr)
    try:
        cpu_compat.self_check()
        print("SILENT", attr)
    except RuntimeError as err:
        assert attr in str(err) and "out of date" in str(err)
        print("loud", attr)
    setattr(module, attr, saved)
"""


def test_redirects_and_fails_loudly_when_megatron_changes():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=run_env())
    lines = proc.stdout.split()
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ok" in lines and "SILENT" not in lines
    assert lines.count("loud") == 5
