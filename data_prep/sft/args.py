"""``midm data sft`` arguments, kept apart so ``midm data --help`` imports nothing heavy."""
from __future__ import annotations

import argparse


def add_sft_args(p: argparse.ArgumentParser) -> None:
    """The arguments of ``midm data sft`` (see ``build.py``)."""
    p.add_argument("paths", nargs="+", metavar="IN … OUT",
                   help="chat .jsonl/.jsonl.gz files or directories ({\"messages\": […]}, {\"instruction\", "
                        "\"input\", \"output\"} or {\"prompt\", \"response\"}), then the OUT directory")
    p.add_argument("--tokenizer", required=True, help="tokenizer DIR (`midm tokenizer train` or `export` output)")
    p.add_argument("--seq-length", type=int, default=4096, help="tokens per training sample (default 4096)")
    p.add_argument("--pack", action=argparse.BooleanOptionalAction, default=True,
                   help="pack several conversations per sample (default) or one per sample (--no-pack)")
    p.add_argument("--overlong", choices=["truncate", "drop"], default="truncate",
                   help="too-long conversations: keep the whole exchanges that fit (default) or drop them")
    p.add_argument("--valid-fraction", type=float, default=0.02,
                   help="conversations held out for validation (default 0.02; 0 = none)")
    p.add_argument("--seed", type=int, default=1234, help="validation split and pack order (default 1234)")
    p.add_argument("--shard-samples", type=int, default=50_000, help="samples per shard directory")
