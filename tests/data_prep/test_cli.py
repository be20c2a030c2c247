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


def _readme_commands() -> dict[str, set[str]]:
    """{sub-command: flags} from data_prep/README.md's command table and code blocks."""
    import re

    from tests.conftest import REPO

    found: dict[str, set[str]] = {}
    for line in (REPO / "data_prep" / "README.md").read_text(encoding="utf-8").splitlines():
        for cmd in re.findall(r"`(midm data [^`]+)`", line):
            for part in cmd.split(" / "):
                words = part.replace("midm data ", "").split()
                if words and re.fullmatch(r"[a-z][a-z-]*", words[0]):
                    found.setdefault(words[0], set()).update(re.findall(r"--[a-z][a-z0-9-]*", part))
    return found


def test_readme_and_parser_agree_on_commands_and_flags():
    """Every documented sub-command exists with every flag the README gives it, and every
    sub-command is documented (help text existing proves nothing; this fails on drift)."""
    from data_prep.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "cmd")
    documented = _readme_commands()
    assert set(sub.choices) == set(documented), "data_prep/README.md and `midm data` differ in sub-commands"
    for name, flags in documented.items():
        options = {o for action in sub.choices[name]._actions for o in action.option_strings}
        assert flags <= options, f"midm data {name}: README flags {sorted(flags - options)} do not exist"


def test_help_runs_for_every_subcommand():
    """`midm data <cmd> --help` through the real entry point: exit 0, usage names the command."""
    from data_prep.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "cmd")
    for name in sub.choices:
        proc = subprocess.run([sys.executable, "-m", "midm", "data", name, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and proc.stdout.startswith(f"usage: midm data {name}"), (name, proc.stderr)
