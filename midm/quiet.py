"""Silence, once at CLI start, the known messages a user can do nothing about — and only those.

Each entry names where the message comes from and a regular expression matched against its start
(``re.match``), so a new warning, or a changed one, still prints. The messages:

* ``GPTModel IS DEPRECATED…`` — Megatron-Core 0.19 ``models/gpt/gpt_model.py`` logs it for every
  ``GPTModel`` built (twice per ``midm distill``/``dpo``: the frozen model too); ``HybridModel`` is not
  a drop-in replacement for the Llama-style models here.
* ``MCore's async save is deprecated…`` — ``dist_checkpointing/strategies/torch.py`` logs it on a
  *synchronous* save too (``save()`` calls ``async_save(…, async_strategy="mcore")``).
* ``full scope is deprecated…`` — ``transformer/transformer_config.py`` warns about its own default
  ``cuda_graph_modules="full"``; we use no CUDA graphs.

lm-eval's ``fatal: not a git repository`` is not a Python message (``git describe`` run by
``lm_eval.loggers.utils.get_git_commit_hash``); :func:`git_env_for_lm_eval` answers it where lm-eval
runs (``evaluation/runner.py``).

Import-light: only ``logging``, ``re`` and ``warnings``.
"""
from __future__ import annotations

import logging
import os
import re
import subprocess
import warnings
from pathlib import Path

# (logger name, message regex): Megatron-Core logs these through ``logging``
KNOWN_LOG_MESSAGES: tuple[tuple[str, str], ...] = (
    ("megatron.core.models.gpt.gpt_model", r"GPTModel IS DEPRECATED\. GPTModel is only accepting critical bug fixes"),
    ("megatron.core.dist_checkpointing.strategies.torch", r"MCore's async save is deprecated and will be removed"),
)
# (category, message regex) for ``warnings.warn``; the same GPTModel text is matched too in case a
# release moves it from ``logging`` to ``warnings``
KNOWN_WARNINGS: tuple[tuple[type[Warning], str], ...] = (
    (UserWarning, r"full scope is deprecated\. Use empty cuda_graph_modules to capture the whole layer"),
    (Warning, r"GPTModel IS DEPRECATED\."),
    (Warning, r"MCore's async save is deprecated"),
)


class _DropKnown(logging.Filter):
    """Drops the records of one logger whose message matches ``pattern`` (re.match)."""

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.match(record.getMessage())


_installed = False


def silence_known_noise() -> None:
    """Install the filters for :data:`KNOWN_LOG_MESSAGES` and :data:`KNOWN_WARNINGS` (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    for category, pattern in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern, category=category)
    for name, pattern in KNOWN_LOG_MESSAGES:
        logging.getLogger(name).addFilter(_DropKnown(pattern))  # the module's own logger, made on import


def git_env_for_lm_eval(source_root: Path | None = None) -> dict[str, str]:
    """Environment under which lm-eval's ``git describe --always`` neither fails nor prints ``fatal:``.

    lm-eval records ``git describe`` of the current directory as ``git_hash``; run from outside a
    git work tree it prints ``fatal: not a git repository`` on stderr. When the current directory is
    in no work tree, this points ``GIT_DIR`` at this code's own checkout (``source_root``, default
    the repository holding this file), so ``git_hash`` is the commit of the code that ran. Returns
    ``{}`` when nothing needs changing (inside a work tree, or no git checkout to point at — the
    message is then lm-eval's to print).
    """
    def git_dir(cwd: Path) -> str | None:
        try:
            out = subprocess.run(["git", "rev-parse", "--absolute-git-dir"], cwd=cwd, capture_output=True,
                                 text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None

    if "GIT_DIR" in os.environ or git_dir(Path.cwd()):
        return {}
    ours = git_dir(source_root or Path(__file__).resolve().parents[1])
    return {"GIT_DIR": ours} if ours else {}
