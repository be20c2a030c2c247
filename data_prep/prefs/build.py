"""``midm data prefs IN… OUT --tokenizer DIR [--seq-length N]``: preference pairs → training shards.

Each kept pair is rendered twice with the Mi:dm chat template (``data_prep/sft/chat.py``, the
template ``midm tokenizer export`` writes): prompt + chosen and prompt + rejected. The loss mask is
1 exactly on the response's assistant content and its closing ``<|eot_id|>`` (0 on
``<|begin_of_text|>``, every header, the whole prompt, and any user turn inside a multi-turn
response) — taken from the turn structure, never from searching for marker tokens. Both sides
share the prompt's ids token for token.

Output (``OUT/``), in Megatron-Core's indexed-dataset format (``indexed.py``):

* ``tokens.bin/.idx`` — ids; one *document* per pair holding two sequences, chosen then rejected;
* ``loss_mask.bin/.idx`` — uint8 masks with the same lengths, aligned with ``tokens``
  (``mask[i]`` says whether ``ids[i]`` is a target; the trainer shifts both by one);
* ``summary.json`` — records read, kept, dropped by reason (read = kept + Σ dropped), tokens, the
  longest side, the tokenizer and ``seq_length``. Written last: its presence marks a complete run.

A side fits when its rendered length is at most ``seq_length + 1`` tokens (inputs are the first
``seq_length`` ids, labels the last ``seq_length``, as Megatron's GPT samples); a pair with a
longer side is dropped as ``too_long`` — truncating a response would teach a preference for
a cut-off answer.
"""
from __future__ import annotations

import gzip
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from data_prep.prefs.indexed import IndexedWriter, token_dtype
from data_prep.prefs.records import DROP_REASONS, Pair, PairError, parse_line
from midm.errors import MidmError

FORMAT = "midm-prefs-1"
SUMMARY_FILE = "summary.json"
TOKENS, LOSS_MASK = "tokens", "loss_mask"  # OUT/tokens.{bin,idx}, OUT/loss_mask.{bin,idx}


class PrefsError(MidmError, ValueError):
    """Unusable input for ``midm data prefs`` (missing files, a tokenizer without chat tokens)."""


@dataclass(frozen=True)
class RenderedPair:
    """Token ids and loss masks (0/1) of both sides; ``prompt_length`` ids are shared."""

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


def input_files(paths: list[str]) -> list[Path]:
    """``.jsonl``/``.jsonl.gz`` files given directly or found under directories, in a stable order.

    Raises:
        PrefsError: a path does not exist or a directory holds no JSONL.
    """
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.name.endswith((".jsonl", ".jsonl.gz")))
            if not found:
                raise PrefsError(f"{p}: no .jsonl/.jsonl.gz files inside")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise PrefsError(f"input {p} does not exist")
    return files


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


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    os.replace(tmp, path)


def build(inputs: list[str], out: str | Path, tokenizer_dir: str, seq_length: int, progress: bool = True) -> dict:
    """Render, check and write every pair of ``inputs`` into ``out``; returns the summary.

    Raises:
        PrefsError: unusable inputs, tokenizer or ``seq_length``.
    """
    if seq_length < 2:
        raise PrefsError(f"--seq-length must be at least 2, got {seq_length}")
    files = input_files(inputs)
    tokenizer = _tokenizer(tokenizer_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY_FILE).unlink(missing_ok=True)  # an interrupted re-run must not look complete
    started = time.perf_counter()
    dropped = dict.fromkeys(DROP_REASONS, 0)
    first_drop: dict[str, str] = {}
    read = kept = 0
    totals = {"chosen": 0, "rejected": 0, "chosen_response": 0, "rejected_response": 0, "prompt": 0}
    longest = max_id = 0
    dtype = token_dtype(tokenizer.padded_vocab_size)
    with IndexedWriter(out / TOKENS, dtype) as ids_out, IndexedWriter(out / LOSS_MASK, "uint8") as mask_out:
        for path in files:
            for line in _lines(path):
                read += 1
                try:
                    pair = render_pair(parse_line(line), tokenizer)
                    length = max(len(pair.chosen_ids), len(pair.rejected_ids))
                    if length > seq_length + 1:
                        raise PairError("too_long", f"{length} tokens > seq_length + 1 = {seq_length + 1}")
                except PairError as err:
                    dropped[err.reason] += 1
                    first_drop.setdefault(err.reason, f"{path.name} record {read}: {err.detail}")
                    continue
                for ids, mask in ((pair.chosen_ids, pair.chosen_mask), (pair.rejected_ids, pair.rejected_mask)):
                    ids_out.add(ids)
                    mask_out.add(mask)
                ids_out.end_document()
                mask_out.end_document()
                kept += 1
                longest = max(longest, length)
                max_id = max(max_id, *pair.chosen_ids, *pair.rejected_ids)
                totals["chosen"] += len(pair.chosen_ids)
                totals["rejected"] += len(pair.rejected_ids)
                totals["chosen_response"] += sum(pair.chosen_mask)
                totals["rejected_response"] += sum(pair.rejected_mask)
                totals["prompt"] += pair.prompt_length
                if progress and read % 10_000 == 0:
                    print(f"[midm data prefs] {read} records, {kept} pairs kept", file=sys.stderr, flush=True)
    dropped_total = sum(dropped.values())
    summary = {
        "format": FORMAT, "inputs": [str(f) for f in files], "tokenizer": str(tokenizer_dir),
        "padded_vocab_size": tokenizer.padded_vocab_size, "seq_length": seq_length,
        "records_read": read, "kept": kept, "dropped_total": dropped_total, "dropped": dropped,
        "balanced": read == kept + dropped_total, "first_dropped": first_drop,
        "tokens": totals, "longest": longest, "max_token_id": max_id, "dtype": dtype.name,
        "files": {"tokens": TOKENS, "loss_mask": LOSS_MASK},
        "seconds": round(time.perf_counter() - started, 3),
    }
    _write_json(out / SUMMARY_FILE, summary)
    return summary


def main_prefs(args) -> int:
    """``midm data prefs`` entry point: prints the accounting as one JSON line."""
    if len(args.paths) < 2:
        raise PrefsError("give at least one input and the output directory (IN … OUT)")
    summary = build(args.paths[:-1], args.paths[-1], args.tokenizer, args.seq_length, progress=not args.no_progress)
    brief = {k: summary[k] for k in ("records_read", "kept", "dropped_total", "dropped", "balanced", "longest")}
    print(json.dumps(brief, ensure_ascii=False))
    if not summary["kept"]:
        raise PrefsError(f"no pair kept out of {summary['records_read']} records "
                         f"(first drops: {summary['first_dropped']})")
    return 0
