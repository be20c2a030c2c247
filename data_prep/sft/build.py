"""``midm data sft IN… OUT --tokenizer DIR [--seq-length N] [--pack | --no-pack]``.

Reads chat JSONL (``records.py`` lists the accepted forms), renders every conversation with the
Mi:dm chat template (``chat.render``: ids equal ``apply_chat_template``, loss mask on assistant
content + ``<|eot_id|>``), holds out a validation split, packs, and writes shards (``shards.py``)
plus ``OUT/stats.json``:

    conversations_read = kept + Σ dropped[reason]        (truncated conversations are kept)

Too long for ``--seq-length`` (policy ``--overlong``): ``truncate`` (default) keeps the longest
prefix of whole exchanges — ``[system] user assistant`` … — that fits, so every trained response
still ends with its ``<|eot_id|>`` (right-truncating tokens, as Megatron-LM's ``SFTDataset`` does,
would teach responses that never stop); a conversation whose first exchange does not fit is
dropped as ``too_long``. ``drop`` drops every overlong conversation.

Packing (``--pack``, default): best-fit decreasing bin packing of conversation lengths into
``seq_length`` (Megatron-Bridge / NeMo pack SFT data offline with first-fit-decreasing; best fit
fills at least as well), then the packs are shuffled with ``--seed``. ``--no-pack``: one
conversation per sample (padded at training time). Either way a sample never splits a
conversation, and the trainer keeps attention inside each one.
"""
from __future__ import annotations

import bisect
import gzip
import json
import os
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from data_prep.accounting import STATS_FILE
from data_prep.docio.inputs import expand_inputs
from data_prep.docio.outputs import staged_dir
from data_prep.sft.chat import ChatFormatError, load_chat_tokenizer, render_turns
from data_prep.sft.records import DROP_REASONS, RecordError, parse_line
from data_prep.sft.shards import FORMAT, INDEX_FILE, VERSION, SFTDataError, token_dtype, write_shard
from tokenizer.fingerprint import fingerprint

PROGRESS_EVERY = 50_000  # conversations between two progress lines on stderr


def iter_lines(path: Path):
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        for raw in fh:
            if raw.strip():
                yield raw


def fit_turns(turns: list[tuple[str, list[int], list[int]]], seq_length: int) -> int:
    """How many leading turns to keep: the longest whole-exchange prefix (ending on an assistant
    turn) of at most ``seq_length`` tokens; 0 when not even the first exchange fits."""
    total, keep = 0, 0
    for n, (role, ids, _) in enumerate(turns):
        total += len(ids)
        if total > seq_length:
            break
        if role == "assistant":
            keep = n + 1
    return keep


def pack(lengths: list[int], capacity: int) -> list[list[int]]:
    """Best-fit-decreasing bins (lists of item indices), each summing to at most ``capacity``."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    free: list[tuple[int, int]] = []  # sorted (remaining capacity, bin index)
    for i in order:
        n = lengths[i]
        k = bisect.bisect_left(free, (n, -1))
        if k < len(free):
            room, b = free.pop(k)
        else:
            room, b = capacity, len(bins)
            bins.append([])
        bins[b].append(i)
        if room - n > 0:
            bisect.insort(free, (room - n, b))
    return bins


def build(paths: list[str], out: str | Path, tokenizer_dir: str, *, seq_length: int = 4096, packed: bool = True,
          overlong: str = "truncate", valid_fraction: float = 0.02, seed: int = 1234,
          shard_samples: int = 50_000, progress: bool = True) -> dict:
    """Run the stage; returns the stats written to ``OUT/stats.json``.

    Raises:
        SFTDataError: missing input, an ``OUT`` that holds something else, bad options, or nothing kept.
    """
    started = time.perf_counter()
    out = Path(out)
    if seq_length < 16:
        raise SFTDataError(f"--seq-length {seq_length} is too small (at least 16 tokens)")
    if overlong not in ("truncate", "drop"):
        raise SFTDataError(f"--overlong must be truncate or drop, got {overlong!r}")
    if not 0 <= valid_fraction < 1:
        raise SFTDataError(f"--valid-fraction must be in [0, 1), got {valid_fraction}")
    if out.exists() and any(out.iterdir()) and not (out / INDEX_FILE).is_file():
        raise SFTDataError(f"{out} exists and is not a `midm data sft` output; choose an empty or new directory")
    files = expand_inputs(paths)  # files, or a directory's JSONL (a filter output: its kept shards)
    try:
        tok = load_chat_tokenizer(tokenizer_dir)
    except (FileNotFoundError, ChatFormatError) as err:
        raise SFTDataError(f"--tokenizer {tokenizer_dir}: {err}") from err

    read, truncated = 0, 0
    dropped: Counter = Counter()
    examples: dict[str, str] = {}
    kept: list[tuple[np.ndarray, np.ndarray]] = []
    for path in files:
        for raw in iter_lines(path):
            read += 1
            try:
                turns = render_turns(parse_line(raw), tok)
            except RecordError as err:
                dropped[err.reason] += 1
                examples.setdefault(err.reason, f"{path.name}: {err.detail}"[:200])
                continue
            n = sum(len(ids) for _, ids, _ in turns)
            if n > seq_length:
                keep = fit_turns(turns, seq_length) if overlong == "truncate" else 0
                if keep == 0:
                    dropped["too_long"] += 1
                    examples.setdefault("too_long", f"{path.name}: {n} tokens > --seq-length {seq_length}")
                    continue
                turns, truncated = turns[:keep], truncated + 1
            ids = np.fromiter((i for _, t, _ in turns for i in t), dtype=np.int64)
            mask = np.fromiter((m for _, _, t in turns for m in t), dtype=np.uint8)
            kept.append((ids, mask))
            if progress and read % PROGRESS_EVERY == 0:
                print(f"[midm data sft] {read:,} read, {len(kept):,} kept", file=sys.stderr, flush=True)
    if not kept:
        raise SFTDataError(f"no conversation kept out of {read} read (dropped: {dict(dropped)}); see the "
                           "accepted forms in `midm data sft --help`")

    rng = random.Random(seed)
    order = list(range(len(kept)))
    rng.shuffle(order)
    n_valid = min(len(kept) - 1, max(1, round(valid_fraction * len(kept)))) if valid_fraction > 0 else 0
    splits = {"train": sorted(order[n_valid:]), "valid": sorted(order[:n_valid])}

    with staged_dir(out) as tmp:  # replaces a previous `midm data sft` output (checked above) when done
        dtype = token_dtype(tok.padded_vocab_size)
        index = {"format": FORMAT, "version": VERSION, "seq_length": seq_length, "packed": packed,
                 "bos_id": tok.bos_id, "eos_id": tok.eos_id, "pad_id": tok.pad_id,
                 "eot_id": tok.piece_to_id("<|eot_id|>"), "vocab_size": tok.vocab_size,
                 "padded_vocab_size": tok.padded_vocab_size, "tokenizer": os.fspath(tokenizer_dir),
                 "tokenizer_fingerprint": fingerprint(tokenizer_dir), "splits": {}}
        split_stats = {}
        for name, members in splits.items():
            if not members:
                continue
            convs = [kept[i] for i in members]
            samples = pack([len(c[0]) for c in convs], seq_length) if packed else [[i] for i in range(len(convs))]
            rng.shuffle(samples)
            shards = [write_shard(tmp / f"{name}-{k // shard_samples:05d}", convs, samples[k:k + shard_samples], dtype)
                      for k in range(0, len(samples), shard_samples)]
            tokens = sum(s["tokens"] for s in shards)
            index["splits"][name] = {"shards": shards}
            split_stats[name] = {"conversations": len(convs), "samples": len(samples), "tokens": tokens,
                                 "target_tokens": sum(s["target_tokens"] for s in shards),
                                 "fill": round(tokens / (len(samples) * seq_length), 4)}
        (tmp / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        dropped_total = sum(dropped.values())
        stats = {"conversations_read": read, "kept": len(kept), "truncated": truncated,
                 "dropped": {r: dropped[r] for r in DROP_REASONS if dropped[r]}, "dropped_total": dropped_total,
                 "balanced": read == len(kept) + dropped_total, "drop_examples": examples,
                 "seq_length": seq_length, "packed": packed, "overlong": overlong, "splits": split_stats,
                 "inputs": [os.fspath(f) for f in files], "seconds": round(time.perf_counter() - started, 3)}
        (tmp / STATS_FILE).write_text(json.dumps(stats, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return stats


def main_sft(args) -> int:
    if len(args.paths) < 2:
        raise SFTDataError("give at least one input and the output directory (IN … OUT)")
    stats = build(args.paths[:-1], args.paths[-1], args.tokenizer, seq_length=args.seq_length, packed=args.pack,
                  overlong=args.overlong, valid_fraction=args.valid_fraction, seed=args.seed,
                  shard_samples=args.shard_samples)
    brief = {k: stats[k] for k in ("conversations_read", "kept", "truncated", "dropped", "dropped_total", "balanced")}
    brief["samples"] = {k: v["samples"] for k, v in stats["splits"].items()}
    print(json.dumps(brief, ensure_ascii=False))
    return 0 if stats["balanced"] else 1


__all__ = ["build", "fit_turns", "main_sft", "pack"]
