"""The eight switchable filter stages, each a datatrove pipeline step with its own counters."""
