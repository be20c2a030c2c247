"""Every `midm slurm` command the READMEs show runs as written (submit lines with `--dry-run` added).

The commands are read from the code blocks of README.md and slurm/README.md and must equal the
list below, so a Slurm command added to a README without being run here fails this test. They run
through the CLI's own entry point in a workspace holding the data they name: a `data.blend_file`
in `midm data mix`'s format (mix/00_stage1_broad.json), and real `midm data sft` / `midm data prefs`
outputs (sft_data/, prefs_data/). `submit` runs all of its checks — the recipe, the resources and
the stage's data — and `--dry-run` stops it before `sbatch` (tests/slurm/test_jobs.py submits to a
real cluster).
"""
from __future__ import annotations

import contextlib
import io
import json
import shlex

import pytest

from slurm.cli import main as slurm_main
from tests.conftest import REPO

READMES = ("README.md", "slurm/README.md")
COMMANDS = {
    "midm slurm render pretrain --recipe midm_8b --nodes 16 --gpus-per-node 8 "
    "--container nvcr.io/nvidia/pytorch:25.09-py3",
    "midm slurm submit pretrain --recipe midm_8b --nodes 16 --partition gpu --time 48:00:00 "
    "--set data.blend_file=mix/00_stage1_broad.json",
    "midm slurm submit sft --recipe midm_mini_sft --data sft_data/ --base runs/midm_mini/checkpoints --nodes 4 "
    "--dry-run",
    "midm slurm submit dpo --recipe midm_mini_dpo --reference runs/midm_mini_sft/checkpoints --data prefs_data/ "
    "--nodes 4 --dry-run",
}


def readme_commands() -> set[str]:
    """Concrete `midm slurm` lines in the READMEs' code blocks (synopses with `…` or `[` are not commands)."""
    found = set()
    for name in READMES:
        in_code = False
        for line in (REPO / name).read_text(encoding="utf-8").splitlines():
            if line.startswith("```"):
                in_code = not in_code
            elif in_code and line.startswith("midm slurm "):
                command = " ".join(line.split("#", 1)[0].split())
                if "…" not in command and "[" not in command:
                    found.add(command)
    return found


def test_readme_slurm_commands_run_as_written(posttrain_data, tmp_path, monkeypatch):
    from tests.megatron_ext.byte_data import write_byte_prefix

    assert readme_commands() == COMMANDS, "a README `midm slurm` command is not covered here (or one here is gone)"
    (tmp_path / "mix").mkdir()
    prefix = write_byte_prefix(tmp_path / "mix", "ko_web_text_document")
    (tmp_path / "mix" / "00_stage1_broad.json").write_text(json.dumps({"name": "stage1_broad", "blend": [[1.0, prefix]]}))
    (tmp_path / "sft_data").symlink_to(posttrain_data / "sft256")
    (tmp_path / "prefs_data").symlink_to(posttrain_data / "prefs256")
    monkeypatch.chdir(tmp_path)  # relative paths resolve against the directory a user submits from
    for command in sorted(COMMANDS):
        argv = shlex.split(command)[2:]
        if argv[0] == "submit" and "--dry-run" not in argv:
            argv.append("--dry-run")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = slurm_main(argv)
        assert code == 0, f"{command}: exit {code}\n{err.getvalue()}"
        assert out.getvalue().startswith("#!/bin/bash") and "srun " in out.getvalue(), command
    assert not (tmp_path / "runs").exists()  # render and dry runs write nothing
