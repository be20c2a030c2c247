"""``midm data prefs IN… OUT --tokenizer DIR [--seq-length N] [--valid-fraction F]``: pairs → DPO shards.

Each kept pair is rendered twice with the Mi:dm chat template (``data_prep/sft/chat.py``, the
template ``midm tokenizer export`` writes): prompt + chosen and prompt + rejected. The loss mask is
1 exactly on the response's assistant content and its closing ``<|eot_id|>`` (0 on
``<|begin_of_text|>``, every header, the whole prompt, and any user turn inside a multi-turn
response) — taken from the turn structure, never from searching for marker tokens. Both sides
share the prompt's ids token for token.

Output (``OUT/``; written into a temporary directory and renamed into place, so ``OUT`` is either
complete or absent)::

    index.json                          format, seq_length, vocabulary, tokenizer (+ tokenizer_fingerprint), pairs per split
    stats.json                          the accounting: records read = kept + Σ dropped[reason]
    {train,valid}/tokens.{bin,idx}      ids; one document per pair = two sequences, chosen then rejected
    {train,valid}/loss_mask.{bin,idx}   uint8 masks of the same lengths (mask[i]: is ids[i] a target)

``tokens`` and ``loss_mask`` are Megatron-Core indexed datasets (``indexed.py``), read by the trainer
with Megatron's ``IndexedDataset``. The validation split is chosen *by prompt* (a hash of the seed
and the prompt messages): pairs that share a prompt land in the same split, so held-out pairs are
about unseen prompts, and the split streams (no record is held in memory).

A side fits when its rendered length is at most ``seq_length + 1`` tokens (inputs are the first
``seq_length`` ids, labels the last ``seq_length``, as Megatron's GPT samples); a pair with a
longer side is dropped as ``too_long`` — truncating a response would teach a preference for a
cut-off answer.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from data_prep.accounting import STATS_FILE
from data_prep.docio.inputs import expand_inputs
from data_prep.docio.outputs import staged_dir
from data_prep.prefs.indexed import IndexedWriter, token_dtype
from data_prep.prefs.records import DROP_REASONS, Pair, PairError, parse_line
from midm.errors import MidmError
from tokenizer.fingerprint import fingerprint

FORMAT, VERSION = "midm-prefs", 1
INDEX_FILE = "index.json"
SPLITS = ("train", "valid")
TOKENS, LOSS_MASK = "tokens", "loss_mask"  # {split}/tokens.{bin,idx}, {split}/loss_mask.{bin,idx}
PROGRESS_EVERY = 10_000  # records between two progress lines on stderr (default on; --no-progress)


class PrefsError(MidmError, ValueError):
    """Unusable input for ``midm data prefs`` (missing files, a tokenizer without chat tokens, bad options)."""


@dataclass(frozen=True)
class RenderedPair:
    """Token ids and loss masks (0/1) of both sides; the first ``prompt_length`` ids are shared."""

    prompt_length: int
    chosen_ids: list[int]
    chosen_mask: list[int]
    rejected_ids: list[int]
    rejected_mask: list[int]


def render_side(prompt: list[dict], response: list[dict], tokenizer) -> tuple[list[int], list[int], int]:
    """(ids, mask, prompt_length) of ``prompt + response``: mask 0 on the prompt, the turn masks after it."""
    from data_prep.sft.chat import render_turns

    ids: list[int] = []
    mask: list[int] = []
    prompt_length = 0
    for n, (_, turn_ids, turn_mask) in enumerate(render_turns(prompt + response, tokenizer)):
        ids += turn_ids
        mask += [0] * len(turn_ids) if n < len(prompt) else turn_mask
        if n == len(prompt) - 1:
            prompt_length = len(ids)
    return ids, mask, prompt_length


def render_pair(pair: Pair, tokenizer) -> RenderedPair:
    """Render both sides of ``pair`` (see the module docstring for the mask)."""
    chosen_ids, chosen_mask, n_prompt = render_side(pair.prompt, pair.chosen, tokenizer)
    rejected_ids, rejected_mask, _ = render_side(pair.prompt, pair.rejected, tokenizer)
    return RenderedPair(n_prompt, chosen_ids, chosen_mask, rejected_ids, rejected_mask)


def held_out(prompt: list[dict], seed: int, fraction: float) -> bool:
    """Whether a prompt belongs to the validation split: sha256(seed, prompt) read as a number in [0, 1)."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(json.dumps([seed, prompt], ensure_ascii=False, sort_keys=True).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64 < fraction


def _lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as f:
        for line in f:
            if line.strip():
                yield line


def _tokenizer(directory: str):
    from data_prep.sft.chat import ChatFormatError, load_chat_tokenizer

    try:
        return load_chat_tokenizer(directory)
    except (FileNotFoundError, ChatFormatError) as err:
        raise PrefsError(f"--tokenizer {directory}: {err}") from err


class _Split:
    """The two indexed datasets of one split and its running totals."""

    def __init__(self, directory: Path, dtype) -> None:
        directory.mkdir(parents=True)
        self.ids = IndexedWriter(directory / TOKENS, dtype)
        self.mask = IndexedWriter(directory / LOSS_MASK, "uint8")
        self.pairs = 0
        self.tokens = {"chosen": 0, "rejected": 0, "chosen_targets": 0, "rejected_targets": 0, "prompt": 0}

    def add(self, pair: RenderedPair) -> None:
        for ids, mask in ((pair.chosen_ids, pair.chosen_mask), (pair.rejected_ids, pair.rejected_mask)):
            self.ids.add(ids)
            self.mask.add(mask)
        self.ids.end_document()
        self.mask.end_document()
        self.pairs += 1
        t = self.tokens
        t["chosen"] += len(pair.chosen_ids)
        t["rejected"] += len(pair.rejected_ids)
        t["chosen_targets"] += sum(pair.chosen_mask)
        t["rejected_targets"] += sum(pair.rejected_mask)
        t["prompt"] += pair.prompt_length

    def finalize(self) -> None:
        self.ids.finalize()
        self.mask.finalize()


def build(inputs: list[str], out: str | Path, tokenizer_dir: str, *, seq_length: int = 4096,
          valid_fraction: float = 0.02, seed: int = 1234, progress: bool = True) -> dict:
    """Render, check, split and write every pair of ``inputs`` into ``out``; returns the stats.

    Raises:
        PrefsError: unusable inputs, tokenizer or options, an ``out`` holding something else, or no pair kept.
    """
    started = time.perf_counter()
    out = Path(out)
    if seq_length < 2:
        raise PrefsError(f"--seq-length must be at least 2, got {seq_length}")
    if not 0 <= valid_fraction < 1:
        raise PrefsError(f"--valid-fraction must be in [0, 1), got {valid_fraction}")
    if out.exists() and any(out.iterdir()) and not (out / INDEX_FILE).is_file():
        raise PrefsError(f"{out} exists and is not a `midm data prefs` output; choose an empty or new directory")
    files = expand_inputs(inputs)  # files, or a directory's JSONL (a filter output: its kept shards)
    tokenizer = _tokenizer(tokenizer_dir)
    dtype = token_dtype(tokenizer.padded_vocab_size)
    with staged_dir(out) as tmp:  # replaces a previous `midm data prefs` output (checked above) when done
        splits = {name: _Split(tmp / name, dtype) for name in SPLITS}
        dropped = dict.fromkeys(DROP_REASONS, 0)
        examples: dict[str, str] = {}
        read = longest = max_id = 0
        for path in files:
            for line in _lines(path):
                read += 1
                try:
                    pair = parse_line(line)
                    rendered = render_pair(pair, tokenizer)
                    length = max(len(rendered.chosen_ids), len(rendered.rejected_ids))
                    if length > seq_length + 1:
                        raise PairError("too_long", f"{length} tokens > --seq-length + 1 = {seq_length + 1}")
                except PairError as err:
                    dropped[err.reason] += 1
                    examples.setdefault(err.reason, f"{path.name} record {read}: {err.detail}"[:200])
                    continue
                splits["valid" if held_out(pair.prompt, seed, valid_fraction) else "train"].add(rendered)
                longest = max(longest, length)
                max_id = max(max_id, *rendered.chosen_ids, *rendered.rejected_ids)
                if progress and read % PROGRESS_EVERY == 0:
                    print(f"[midm data prefs] {read:,} read, {sum(s.pairs for s in splits.values()):,} kept",
                          file=sys.stderr, flush=True)
        for split in splits.values():
            split.finalize()
        kept = sum(s.pairs for s in splits.values())
        if not kept:
            raise PrefsError(f"no pair kept out of {read} records (dropped: "
                             f"{ {k: v for k, v in dropped.items() if v} }; first: {examples})")
        index = {"format": FORMAT, "version": VERSION, "seq_length": seq_length,
                 "vocab_size": tokenizer.vocab_size, "padded_vocab_size": tokenizer.padded_vocab_size,
                 "pad_id": tokenizer.pad_id, "eot_id": tokenizer.piece_to_id("<|eot_id|>"),
                 "tokenizer": os.fspath(tokenizer_dir), "tokenizer_fingerprint": fingerprint(tokenizer_dir),
                 "dtype": dtype.name, "longest": longest,
                 "max_token_id": max_id, "seed": seed, "valid_fraction": valid_fraction,
                 "splits": {name: {"pairs": s.pairs} for name, s in splits.items()}}
        dropped_total = sum(dropped.values())
        stats = {"records_read": read, "kept": kept, "dropped": dropped, "dropped_total": dropped_total,
                 "balanced": read == kept + dropped_total, "drop_examples": examples,
                 "splits": {name: {"pairs": s.pairs, "tokens": s.tokens} for name, s in splits.items()},
                 "longest": longest, "seq_length": seq_length, "inputs": [os.fspath(f) for f in files],
                 "seconds": round(time.perf_counter() - started, 3)}
        (tmp / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        (tmp / STATS_FILE).write_text(json.dumps(stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return stats


def main_prefs(args) -> int:
    """``midm data prefs`` entry point: prints the accounting as one JSON line."""
    if len(args.paths) < 2:
        raise PrefsError("give at least one input and the output directory (IN … OUT)")
    stats = build(args.paths[:-1], args.paths[-1], args.tokenizer, seq_length=args.seq_length,
                  valid_fraction=args.valid_fraction, seed=args.seed, progress=not args.no_progress)
    brief = {k: stats[k] for k in ("records_read", "kept", "dropped", "dropped_total", "balanced", "longest")}
    brief["pairs"] = {k: v["pairs"] for k, v in stats["splits"].items()}
    print(json.dumps(brief, ensure_ascii=False))
    return 0 if stats["balanced"] else 1
