"""The CLI stays light: `midm data --help` imports neither torch, Megatron nor datatrove."""
from __future__ import annotations

import subprocess
import sys


def test_help_is_import_light():
    code = ("import sys; from data_prep.cli import build_parser; import contextlib, io\n"
            "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
            "    build_parser().parse_args(['--help'])\n"
            "heavy = [m for m in ('torch', 'megatron', 'datatrove', 'kiwipiepy', 'fasttext') if m in sys.modules]\n"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_subcommand_has_help():
    from data_prep.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "cmd")
    assert {"filter", "dedup", "pii", "synth", "mix", "tokenize", "train-classifier"} <= set(sub.choices)
    for parser in sub.choices.values():
        assert parser.format_help()
