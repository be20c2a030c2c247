"""The known messages a user cannot act on are silenced precisely; a new warning still prints."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from midm.quiet import KNOWN_LOG_MESSAGES, KNOWN_WARNINGS
from tests.conftest import REPO

SCRIPT = r"""
import logging, warnings
from midm.quiet import silence_known_noise
silence_known_noise(); silence_known_noise()  # idempotent
gpt = logging.getLogger("megatron.core.models.gpt.gpt_model")
gpt.warning("GPTModel IS DEPRECATED. GPTModel is only accepting critical bug fixes, no new features.")
gpt.warning("a new GPTModel message")
logging.getLogger("megatron.core.dist_checkpointing.strategies.torch").warning(
    "MCore's async save is deprecated and will be removed in the future releases. Please, use NVRx")
warnings.warn("full scope is deprecated. Use empty cuda_graph_modules to capture the whole layer.")
warnings.warn("a brand-new deprecation", DeprecationWarning)
warnings.warn("something else entirely")
"""


def test_known_messages_are_dropped_and_new_ones_print():
    proc = subprocess.run([sys.executable, "-W", "default", "-c", SCRIPT], cwd=REPO, capture_output=True, text=True,
                          check=True)
    err = proc.stderr
    assert "GPTModel IS DEPRECATED" not in err and "async save" not in err and "full scope" not in err, err
    assert "a new GPTModel message" in err and "a brand-new deprecation" in err and "something else entirely" in err


def test_the_patterns_match_the_installed_megatron_text():
    """If a Megatron-Core release rewords a message, this fails (instead of the filter silently missing it)."""
    import importlib.util

    spec = importlib.util.find_spec("megatron")  # located, not imported (importing core takes torch)
    root = Path(next(iter(spec.submodule_search_locations))) / "core"
    sources = {"megatron.core.models.gpt.gpt_model": root / "models" / "gpt" / "gpt_model.py",
               "megatron.core.dist_checkpointing.strategies.torch":
                   root / "dist_checkpointing" / "strategies" / "torch.py"}
    for name, pattern in KNOWN_LOG_MESSAGES:
        text = re.sub(r'"\s*\n\s*"', "", sources[name].read_text(encoding="utf-8"))  # join implicit concatenation
        assert re.search(pattern, text), (name, pattern)
    config = (root / "transformer" / "transformer_config.py").read_text(encoding="utf-8")
    assert re.search(KNOWN_WARNINGS[0][1], re.sub(r'"\s*\n\s*"', "", config))


def test_lm_eval_git_call_prints_no_fatal_outside_a_work_tree(tmp_path):
    """lm-eval's `git describe --always` from a directory in no git work tree: `fatal:` without our
    environment, the code's own commit with it."""
    code = ("import os, subprocess, sys; from midm.quiet import git_env_for_lm_eval; "
            "env = {**os.environ, **git_env_for_lm_eval()} if sys.argv[1] == 'ours' else dict(os.environ); "
            "p = subprocess.run(['git', 'describe', '--always'], env=env, capture_output=True, text=True); "
            "print(p.returncode, p.stdout.strip(), p.stderr.strip())")
    env = {**os.environ, "PYTHONPATH": str(REPO), "GIT_CEILING_DIRECTORIES": str(tmp_path.parent)}
    env.pop("GIT_DIR", None)
    plain = subprocess.run([sys.executable, "-c", code, "plain"], cwd=tmp_path, env=env, capture_output=True,
                           text=True, check=True).stdout
    ours = subprocess.run([sys.executable, "-c", code, "ours"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, check=True).stdout
    assert "fatal: not a git repository" in plain
    assert ours.startswith("0 ") and "fatal" not in ours, ours


def test_offline_eval_without_data_dir_says_what_to_pass():
    """`datasets` offline raises ConnectionError("Couldn't reach …"); the run turns it into the one-line
    EvalError naming --data-dir and the Hub ids (the CLI prints it, exit 2)."""
    code = ("import datasets, sys\n"
            "from evaluation import registry\n"
            "from evaluation.runner import EvalError, _hub_unreachable_is_a_user_error\n"
            "try:\n"
            "    with _hub_unreachable_is_a_user_error(registry.resolve(['klue_nli_mc']), None):\n"
            "        datasets.load_dataset('klue/klue', 'nli')\n"
            "except EvalError as err:\n"
            "    print(err)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120).stdout
    assert "pass --data-dir DIR" in out and "klue/klue" in out and "run online" in out, out
