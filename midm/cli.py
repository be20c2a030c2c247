"""``midm <stage> …`` — one CLI over every pipeline stage.

Each stage lives in its own package and owns its argument parser (``main(argv) -> int``). Bad
input raises ``midm.errors.MidmError`` anywhere below; it is caught here, once: the message on one
line, exit status 2. Ctrl-C ends any stage with one line and exit status 130 (no traceback). A reader
that goes away early (``midm recipe show midm_8b | head -3``) ends the stage quietly with status 141,
what a shell reports for a command ended by SIGPIPE (the Python documentation's recipe for
``BrokenPipeError``: SIGPIPE itself stays ignored, so sockets in the stages keep their errors). The
known messages a user cannot act on are silenced here, once, before a stage runs
(:mod:`midm.quiet`); every other warning still prints.
The table below names them as import strings so that ``midm slurm render`` or
``midm data filter`` never pull in torch or Megatron-Core: a stage's module is imported only
when that stage runs.
"""
from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass

from midm.errors import MidmError
from midm.quiet import silence_known_noise

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a command ended by Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader went away


@dataclass(frozen=True)
class Stage:
    target: str  # "package.module:function", called with the remaining argv
    summary: str
    parser: str = ""  # "package.module:function" returning the stage's ArgumentParser(s), for help checks


STAGES: dict[str, Stage] = {
    "recipe": Stage("recipes.cli:main", "show a resolved recipe as JSON (incl. num_parameters)",
        "recipes.cli:build_parser"),
    "train": Stage("megatron_ext.commands.train:main", "pretrain / continue training a recipe on Megatron-Core",
        "megatron_ext.commands.train:build_parser"),
    "data": Stage("data_prep.cli:main", "filter · dedup · pii · synth · mix · tokenize",
        "data_prep.cli:build_parser"),
    "tokenizer": Stage("tokenizer.cli:main", "train · eval · export the Korean-optimized tokenizer",
        "tokenizer.cli:build_parser"),
    "dus": Stage("megatron_ext.commands.dus:main", "depth-up scale a checkpoint (layer duplication)",
        "megatron_ext.commands.dus:build_parser"),
    "prune": Stage("megatron_ext.commands.prune:main", "Minitron-style width/depth pruning of a checkpoint",
        "megatron_ext.commands.prune:build_parser"),
    "distill": Stage("megatron_ext.commands.distill:main", "logit distillation from a frozen teacher",
        "megatron_ext.commands.distill:build_parser"),
    "sft": Stage("megatron_ext.commands.sft:main", "supervised fine-tuning on packed chat data (same Trainer)",
        "megatron_ext.commands.sft:build_parser"),
    "dpo": Stage("megatron_ext.commands.dpo:main", "preference tuning (DPO) against a frozen reference",
        "megatron_ext.commands.dpo:build_parser"),
    "convert": Stage("megatron_ext.commands.convert:main", "to-hf · from-hf · reshard checkpoint conversion",
        "megatron_ext.commands.convert:build_parser"),
    "eval": Stage("evaluation.cli:main", "lm-evaluation-harness runs and paper tables",
        "evaluation.cli:build_parsers"),
    "slurm": Stage("slurm.cli:main", "render · submit sbatch scripts for any stage",
        "slurm.cli:build_parser"),
    "demo": Stage("midm.demo:main", "the whole Mi:dm lineage at tiny scale",
        "midm.demo:build_parser"),
}


def _usage() -> str:
    width = max(map(len, STAGES))
    lines = ["usage: midm <stage> [args…]   (midm <stage> --help for each stage)", "", "stages:"]
    lines += [f"  {name:<{width}}  {stage.summary}" for name, stage in STAGES.items()]
    return "\n".join(lines)


def _resolve(name: str):
    module_name, func_name = STAGES[name].target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and module_name.startswith(err.name):  # the stage's own module is missing
            return None
        raise
    return getattr(module, func_name)


def _detach_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush of a closed pipe raises nothing.

    From the Python documentation's note on SIGPIPE (library/signal.html, "Note on SIGPIPE").
    """
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # stdout replaced by an object without a descriptor
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in STAGES:
        print(f"midm: unknown stage {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    silence_known_noise()
    try:
        func = _resolve(name)
        if func is None:
            print(f"midm {name}: this stage is not available in this version of midm-recipes yet "
                  f"({STAGES[name].target} is missing).", file=sys.stderr)
            return 2
        code = int(func(rest) or 0)
        sys.stdout.flush()  # inside the try: a closed pipe is reported here, not at interpreter exit
        return code
    except BrokenPipeError:
        _detach_stdout()
        return EXIT_BROKEN_PIPE
    except MidmError as err:  # bad input the user can fix: one line, no traceback
        print(f"midm {name}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"\nmidm {name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
