"""The data stages' user error: bad input paths, unreadable or unhandled input formats, bad configs.

Raised by ``midm data …`` and by the shared record readers that ``midm tokenizer …`` uses too;
the CLI prints the message on one line and exits 2 (see :mod:`midm.errors`).
"""
from __future__ import annotations

from midm.errors import MidmError


class DataError(MidmError):
    """Input the user can fix: a missing path, a file of the wrong format, an unfinished stage output."""
