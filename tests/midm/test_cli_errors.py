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
    (["data", "prefs", "/nonexistent.jsonl", "/tmp/x", "--tokenizer", "/tmp"], "/nonexistent.jsonl: no such file or directory"),
])
def test_user_errors_are_one_line_exit_2(argv, message):
    proc = subprocess.run([sys.executable, "-m", "midm", *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(f"midm {argv[0]}") and ": error: " in lines[-1] and message in lines[-1], proc.stderr


@pytest.mark.parametrize("argv, message", [
    (["data", "filter", "{tmp}/nope.jsonl", "{tmp}/out"], "nope.jsonl: no such file or directory"),
    (["data", "filter", "{corpus}", "{tmp}/a_file/out"], "a_file is a file, not a directory"),
    (["data", "filter", "{tmp}/not_jsonl.txt", "{tmp}/out"], "expected JSON Lines"),
    (["data", "tokenize", "{tmp}/nope.jsonl", "{tmp}/out/tok", "--tokenizer", "{tmp}"], "no such file or directory"),
    (["data", "tokenize", "{corpus}", "{tmp}/out/tok", "--tokenizer", "{tmp}"], "not a midm tokenizer directory"),
    (["tokenizer", "eval", "--tokenizer", "{tmp}/nope", "--text", "{corpus}"], "not a midm tokenizer directory"),
    (["data", "filter", "{corpus}", "{tmp}/out", "--stages", "toxicity", "--config", "{tmp}/not_jsonl.txt"],
     "must hold a YAML mapping"),
])
def test_bad_paths_are_one_line_exit_2_and_leave_nothing(argv, message, tmp_path):
    """Every data-path mistake: exit 2, one line, and a failed start leaves no half-made output folder."""
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "not_jsonl.txt").write_text("plain text\n")
    corpus = str(REPO / "tests" / "data" / "corpus")
    argv = [a.format(tmp=tmp_path, corpus=corpus) for a in argv]
    proc = subprocess.run([sys.executable, "-m", "midm", *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and ": error: " in lines[0] and message in lines[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "not_jsonl.txt"]


def test_the_error_base_is_import_light():
    code = "import midm.errors, recipes.args, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


@pytest.mark.parametrize("argv, expected", [(["recipe", "list"], "midm_mini_sft"), (["eval", "list"], "ko_ifeval")])
def test_readme_listing_commands_run_as_written(argv, expected):
    """`midm recipe list` and `midm eval list` exactly as the READMEs show them."""
    proc = subprocess.run([sys.executable, "-m", "midm", *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert expected in proc.stdout


def test_a_closed_pipe_ends_quietly():
    """`midm recipe show midm_8b | head -3`: the reader is gone before midm writes; no traceback, status 141."""
    proc = subprocess.Popen([sys.executable, "-m", "midm", "recipe", "show", "midm_8b"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the child has imported anything: its first write meets a closed pipe
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141 and stderr == "", stderr
