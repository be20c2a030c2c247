"""Bad input anywhere below the CLI is one ``MidmError``, reported once by ``midm/cli.py``: one line on
stderr naming the stage, exit 2, no traceback — for every kind of stage (torch-free and Megatron)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("argv, message", [
    (["train", "--recipe", "nope"], "unknown recipe 'nope'"),
    (["recipe", "show", "tiny", "--set", "train.nope=1"], "unknown field 'nope'"),
    (["convert", "to-hf", "--checkpoint", "/nonexistent", "--output", "/tmp/x"], "/nonexistent is not a checkpoint"),
    (["dus", "--checkpoint", "/nonexistent", "--output", "/tmp/x", "--map", "solar:1"], "/nonexistent is not a checkpoint"),
    (["distill", "--recipe", "tiny_mini", "--teacher", "/nonexistent"], "/nonexistent is not a checkpoint"),
    (["dpo", "--recipe", "tiny_dpo", "--reference", "/nonexistent", "--data", "/nonexistent"],
     "/nonexistent: no index.json"),
    (["data", "prefs", "/nonexistent.jsonl", "/tmp/x", "--tokenizer", "/tmp"], "input /nonexistent.jsonl does not exist"),
])
def test_user_errors_are_one_line_exit_2(argv, message):
    proc = subprocess.run([sys.executable, "-m", "midm", *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(f"midm {argv[0]}") and ": error: " in lines[-1] and message in lines[-1], proc.stderr


def test_the_error_base_is_import_light():
    code = "import midm.errors, recipes.args, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


@pytest.mark.parametrize("argv, expected", [(["recipe", "list"], "midm_mini_sft"), (["eval", "list"], "ko_ifeval")])
def test_readme_listing_commands_run_as_written(argv, expected):
    """`midm recipe list` and `midm eval list` exactly as the READMEs show them."""
    proc = subprocess.run([sys.executable, "-m", "midm", *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout
