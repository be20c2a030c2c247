"""Every ``midm … --help`` explains itself: each (sub)command has a description, each option a help
text, and metavars follow one style (``KEY=VALUE``, upper case). Walks the argparse objects in-process
(``midm.cli.STAGES[…].parser``), no subprocesses."""
from __future__ import annotations

import argparse
import importlib
import re
import sys

import pytest

from midm.cli import STAGES

# upper-case words, digits and the punctuation of forms like IN … OUT, [LABEL=]FILE, N|RANGE, SRC:DST[,…]
METAVAR = re.compile(r"^[A-Z0-9_\[\]=|:,…. -]+$")


def _parsers(name: str) -> list[argparse.ArgumentParser]:
    module, func = STAGES[name].parser.split(":")
    built = getattr(importlib.import_module(module), func)()
    return list(built) if isinstance(built, (list, tuple)) else [built]


def _walk(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                yield from _walk(child)


def _problems(parser: argparse.ArgumentParser) -> list[str]:
    out = []
    if not (parser.description or "").strip():
        out.append(f"{parser.prog}: no description")
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue  # hidden on purpose (test hooks such as `slurm submit --sbatch`)
        label = "/".join(action.option_strings) or action.dest
        if not (action.help or "").strip():
            out.append(f"{parser.prog} {label}: no help text")
        metavar = action.metavar
        for m in (metavar if isinstance(metavar, tuple) else (metavar,)):
            if m is not None and not METAVAR.match(m):
                out.append(f"{parser.prog} {label}: metavar {m!r} is not upper-case KEY=VALUE style")
    return out


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_subcommand_and_option_has_help(stage):
    assert STAGES[stage].parser, f"midm {stage}: no parser registered in midm/cli.py STAGES"
    problems = [p for parser in _parsers(stage) for sub in _walk(parser) for p in _problems(sub)]
    assert not problems, "\n".join(problems)


def test_set_style_is_one_metavar_everywhere():
    """``--set`` and every other key/value option show ``KEY=VALUE`` (not k=v, FIELD=VALUE, OVERRIDES)."""
    seen = {}
    for stage in STAGES:
        for parser in _parsers(stage):
            for sub in _walk(parser):
                for action in sub._actions:
                    if "--set" in action.option_strings or "--sbatch-arg" in action.option_strings:
                        seen[f"{sub.prog} {action.option_strings[0]}"] = action.metavar
    assert seen and set(seen.values()) == {"KEY=VALUE"}, seen
    usage = "".join(sub.format_usage() for stage in STAGES for p in _parsers(stage) for sub in _walk(p))
    assert "k=v" not in usage


def test_eval_usage_shows_list_and_table(capsys):
    from evaluation.cli import main

    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "midm eval list" in text.split("\n\n")[0] and "midm eval table" in text.split("\n\n")[0], text


def test_data_and_slurm_help_stay_torch_free():
    """Building the torch-free stages' parsers imports no torch (the walk above imports everything)."""
    import subprocess

    code = ("import sys, data_prep.cli as d, slurm.cli as s, recipes.cli as r, tokenizer.cli as t; "
            "d.build_parser(); s.build_parser(); r.build_parser(); t.build_parser(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
