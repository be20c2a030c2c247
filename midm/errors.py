"""The one error type every stage raises for bad input: caught once in ``midm/cli.py``.

A ``MidmError`` means "the user can fix this": a bad recipe, path, checkpoint or data file. The CLI
prints ``midm <stage>: <message>`` on one line and exits with status 2 (no traceback). Anything else
is a bug and keeps its traceback. Stage errors subclass it (``RecipeError``, ``DataError``,
``CheckpointError``, …) so callers can still catch the specific kind.

Import-light on purpose: ``recipes/``, ``data_prep/``, ``tokenizer/`` and ``slurm/`` use it without
pulling torch.
"""
from __future__ import annotations

EXIT_USAGE = 2


class MidmError(Exception):
    """Bad input the user can fix; the message says what to change. Exit status 2 at the CLI."""

    exit_code: int = EXIT_USAGE
