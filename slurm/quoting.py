"""Turning recipe and flag values into shell text that cannot execute anything.

Two places receive values, and each gets its own rule:

* The script body is bash. Every value goes through :func:`shlex.quote`, so a run name like
  ``x$(rm -rf ~)`` or one with backticks reaches ``midm`` as those literal characters. The only
  unquoted expansions in a rendered script are variables the template itself defines
  (:class:`Var`), never text that came from a user.
* ``#SBATCH`` lines are parsed by ``sbatch``, not by a shell: it has its own quoting rules and
  expands ``%j``-style patterns in file names, and a newline would start a new directive. Rather
  than rely on those rules, values there must match a conservative character set or the render
  fails with a message naming the field (:func:`sbatch_value`).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Iterable, Union

from midm.errors import MidmError


class RenderError(MidmError, ValueError):
    """A value that cannot go into a script; the message names where it came from."""


@dataclass(frozen=True)
class Var:
    """A reference to a variable the *template* defines (e.g. the array shard), expanded at run time."""

    name: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.name):
            raise ValueError(f"not a shell variable name: {self.name!r}")


Part = Union[str, int, float, Var]
Word = Union[Part, tuple[Part, ...]]

# Characters that mean the same thing to sbatch, to Slurm's file-name patterns and to a reader.
_SBATCH_SAFE = re.compile(r"[A-Za-z0-9._,:/=@+~-]+")
_SBATCH_ALLOWED = "letters, digits and . _ , : / = @ + ~ -"


def quote_word(word: Word) -> str:
    """One shell word: literal parts single-quoted, :class:`Var` parts as ``"${NAME}"``."""
    parts = word if isinstance(word, tuple) else (word,)
    out = []
    for part in parts:
        if isinstance(part, Var):
            out.append(f'"${{{part.name}}}"')
        else:
            out.append(shlex.quote(str(part)))
    return "".join(out) if out else "''"


def quote_command(argv: Iterable[Word]) -> str:
    """A whole command line, each argument quoted with :func:`quote_word`."""
    return " ".join(quote_word(word) for word in argv)


def sbatch_value(value: object, source: str) -> str:
    """Return ``value`` for an ``#SBATCH`` line, or raise :class:`RenderError` naming ``source``."""
    text = str(value)
    if not _SBATCH_SAFE.fullmatch(text):
        raise RenderError(
            f"{source} = {text!r} cannot be written into an #SBATCH line: only {_SBATCH_ALLOWED} are "
            f"allowed there (no spaces, quotes, $, `, % or newlines). Choose a plainer value.")
    return text


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def single_line(value: str, source: str) -> str:
    """Reject newlines and other control characters: no recipe value or flag needs one, and a value
    that spans lines is how a directive or a command gets smuggled into a script."""
    if _CONTROL.search(value):
        raise RenderError(f"{source} = {value!r} contains a newline or control character; "
                          "values must be a single line of printable text")
    return value


_SHARD_FIELD = re.compile(r"\{shard(?::0(\d)d)?\}")


def shard_word(value: str, source: str) -> tuple[Word, set[int]]:
    """Split ``value`` on ``{shard}`` / ``{shard:05d}`` placeholders for job arrays.

    Returns the word (literal text and :class:`Var` parts) and the zero-padding widths used, so the
    template can define ``MIDM_SHARD_0<width>`` once. Any other brace pattern is left literal.
    """
    parts: list[Part] = []
    widths: set[int] = set()
    pos = 0
    for match in _SHARD_FIELD.finditer(value):
        if match.start() > pos:
            parts.append(value[pos:match.start()])
        if match.group(1):
            width = int(match.group(1))
            if width < 1:
                raise RenderError(f"{source}: {{shard:0{width}d}} needs a width of 1-9")
            widths.add(width)
            parts.append(Var(f"MIDM_SHARD_0{width}"))
        else:
            parts.append(Var("MIDM_SHARD"))
        pos = match.end()
    if pos < len(value):
        parts.append(value[pos:])
    return (tuple(parts) if len(parts) != 1 else parts[0]) if parts else "", widths
