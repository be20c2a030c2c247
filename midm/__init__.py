"""The ``midm`` command: one entry point that dispatches lazily to each pipeline stage."""
