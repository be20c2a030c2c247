"""``midm data prefs`` arguments, kept apart so ``midm data --help`` imports nothing heavy."""
from __future__ import annotations

import argparse


def add_prefs_args(p: argparse.ArgumentParser) -> None:
    """The arguments of ``midm data prefs`` (see ``build.py``)."""
    p.add_argument("paths", nargs="+", metavar="IN … OUT",
                   help="preference .jsonl/.jsonl.gz files or directories ({\"prompt\", \"chosen\", \"rejected\"} "
                        "per line; strings or message lists), then the OUT directory")
    p.add_argument("--tokenizer", required=True, help="tokenizer DIR (`midm tokenizer train` or `export` output)")
    p.add_argument("--seq-length", type=int, default=4096,
                   help="training sequence length; pairs with a side longer than seq_length + 1 tokens are dropped "
                        "(default 4096)")
    p.add_argument("--valid-fraction", type=float, default=0.02,
                   help="share of prompts held out for validation, chosen by prompt (default 0.02; 0 = none)")
    p.add_argument("--seed", type=int, default=1234, help="seed of the validation split (default 1234)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: one on stderr)")
