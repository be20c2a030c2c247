"""``midm data tokenize IN OUT_PREFIX --tokenizer DIR --workers N`` → Megatron ``.bin/.idx``.

(Megatron-Core's format, written by :mod:`data_prep.tokenization.indexed`: no torch import.)

Design (vs. Megatron-LM's ``tools/preprocess_data.py``, which reads every document in one
process, pickles it to a worker and pickles its ids back to one writer):

* IN is a file or a directory; a ``midm data filter`` output directory means its kept shards
  (:mod:`data_prep.docio.inputs`), never its ``rejects/`` or ``_work/``. Every file must be JSON
  Lines (checked up front, exit 2 naming the format otherwise);
* the input is cut into *units* (:mod:`data_prep.tokenization.units`): byte ranges of
  ``--shard-mb`` aligned to line ends for plain ``.jsonl`` (workers seek there themselves — no
  text travels between processes), one unit per gzip file (not seekable; streamed). Each worker
  (:mod:`data_prep.tokenization.workers`) tokenises its unit in batches and writes
  ``OUT_PREFIX.shards/{k}.bin/.idx`` a batch at a time;
* a damaged record or gzip member is counted by reason (``skipped`` in the summary) and skipped;
* memory is bounded by one batch of text per worker, however large the input;
* a unit is done when its ``.idx`` exists (renamed into place last), so an interrupted run
  resumes where it stopped; no ``*.tmp`` file outlives a run;
* units are concatenated in input order into ``OUT_PREFIX.bin/.idx`` (a byte copy of the data,
  the indices joined; written as ``.tmp`` and renamed): one document per sequence, EOD (``eos_id``)
  appended, uint16 when the vocabulary has fewer than 65,500 ids, else int32;
* ``OUT_PREFIX.summary.json`` records documents, tokens, throughput, the encoder backend in use
  (and why), the blend entry and the tokenizer (``tokenizer``: the path given, ``tokenizer_fingerprint``:
  ``tokenizer/fingerprint.py``, which trainers compare across a blend and with checkpoints).
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from data_prep.errors import DataError
from data_prep.tokenization.units import input_sources, iter_unit_texts, plan_units, unit_bytes, unit_size
from data_prep.tokenization.workers import dtype_for, run_units

__all__ = ["main_tokenize", "plan_units", "iter_unit_texts", "dtype_for"]
MAX_LINE_BYTES = 64_000_000  # a longer line is skipped as too_large without being read into memory


def _progress(total_bytes: int, enabled: bool):
    """A byte-based bar (total known up front) with the document count; a line every 30 s off a TTY."""
    if not enabled:
        return None
    from tqdm import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=total_bytes, unit="B", unit_scale=True, desc="tokenize", file=sys.stderr,
                mininterval=1.0 if tty else 30.0, dynamic_ncols=tty)


def _merge(prefixes: list[str], out_prefix: str, dtype) -> tuple[int, int]:
    """Concatenate the shards into ``out_prefix.bin/.idx`` (tmp + rename); (documents, tokens).

    Unlike ``IndexedDatasetBuilder.add_index`` — a ``gc.collect()`` and a Python list extend per
    shard, measured 39 s of a 68 s run over 81 shards / 324k documents — the index arrays are
    joined with NumPy and the data files copied in 16 MB blocks.
    """
    from data_prep.tokenization.indexed import read_index, write_index

    tmp_bin, tmp_idx = f"{out_prefix}.bin.tmp", f"{out_prefix}.idx.tmp"
    lengths: list[np.ndarray] = []
    doc_ends: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
    sequences = 0
    try:
        with open(tmp_bin, "wb") as out:
            for prefix in prefixes:
                shard_dtype, shard_lengths, shard_docs = read_index(f"{prefix}.idx")
                if shard_dtype != np.dtype(dtype):
                    raise DataError(f"{prefix}.idx holds {shard_dtype} ids, this run writes {np.dtype(dtype).name}: "
                                    "it was made with another tokenizer; delete OUT_PREFIX.shards/ and re-run")
                lengths.append(shard_lengths)
                doc_ends.append(shard_docs[1:] + sequences)
                sequences += len(shard_lengths)
                with open(f"{prefix}.bin", "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 24)
        all_lengths = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int32)
        write_index(tmp_idx, dtype, all_lengths, np.concatenate(doc_ends))
        os.replace(tmp_bin, f"{out_prefix}.bin")
        os.replace(tmp_idx, f"{out_prefix}.idx")
    finally:
        for tmp in (tmp_bin, tmp_idx):
            Path(tmp).unlink(missing_ok=True)
    return sum(len(d) for d in doc_ends) - 1, int(all_lengths.sum())


def _hub_options(args) -> tuple[str | None, str]:
    """``(--hub-config, --hub-split)`` of a tokenize command line, the split ``train`` by default."""
    return getattr(args, "hub_config", None), getattr(args, "hub_split", None) or "train"


def _resumable_plan(shard_dir: Path, sources: list, args, tokenizer_fingerprint: str) -> list:
    """The units of this run; the same as the interrupted run's when inputs and settings are the same.

    ``OUT_PREFIX.shards/plan.json`` records the units with the inputs' sizes and mtimes, the
    tokenizer (its path and its fingerprint: a tokenizer trained again into the same directory is
    another tokenizer) and the text key. Finished shards are reused only under an identical record:
    otherwise (an input changed, another tokenizer, other unit sizes) they are deleted first, so a
    resumed run never merges shards of different inputs, nor labels one tokenizer's ids with another's
    fingerprint.
    """
    size = unit_size(sources, max(1, int(args.shard_mb * 1e6)), args.workers)
    hub_config, hub_split = _hub_options(args)
    inputs = [[s.path, hub_config, hub_split, "hub"] if s.format == "hub" else
              [str(Path(s.path).resolve()), Path(s.path).stat().st_size, Path(s.path).stat().st_mtime_ns, s.format]
              for s in sources]
    plan_file = shard_dir / "plan.json"
    if plan_file.exists():
        try:
            old = json.loads(plan_file.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        same = (old.get("inputs") == inputs and old.get("tokenizer") == str(Path(args.tokenizer).resolve())
                and old.get("tokenizer_fingerprint") == tokenizer_fingerprint and old.get("text_key") == args.text_key)
        if same:
            return [tuple(u) for u in old["units"]]
        print(f"tokenize: {shard_dir} holds shards of another input or tokenizer; starting over", file=sys.stderr)
        for f in shard_dir.iterdir():
            f.unlink()
    units = plan_units(sources, size, hub_parts=args.workers, hub_config=hub_config, hub_split=hub_split)
    record = {"inputs": inputs, "tokenizer": str(Path(args.tokenizer).resolve()),
              "tokenizer_fingerprint": tokenizer_fingerprint, "text_key": args.text_key, "unit_bytes": size,
              "units": units}
    tmp = shard_dir / "plan.json.tmp"
    tmp.write_text(json.dumps(record), encoding="utf-8")
    tmp.replace(plan_file)
    return units


def main_tokenize(args) -> int:
    """Run ``midm data tokenize`` (argparse namespace of ``data_prep.cli``); 0 on success.

    Raises :class:`DataError` (exit 2) for a missing or non-JSON-Lines input and for an input of
    which not one record is readable.
    """
    from tokenizer import load_tokenizer
    from tokenizer.fingerprint import fingerprint

    from data_prep.docio.outputs import check_output_dir, removed_if_start_fails

    t0 = time.perf_counter()
    fmt = getattr(args, "format", None) or "auto"
    if (getattr(args, "hub_config", None) or getattr(args, "hub_split", None)) and fmt != "hub":
        raise DataError("--hub-config / --hub-split go with --format hub")
    sources = input_sources(args.inputs, args.text_key, fmt, *_hub_options(args))
    files = [s.path if s.format == "hub" else Path(s.path) for s in sources]
    ref = load_tokenizer(args.tokenizer)  # fail fast on a bad tokenizer dir; encoding happens in the workers
    dtype = dtype_for(ref.vocab_size)
    tokenizer_fingerprint = fingerprint(ref.directory)  # what trainers compare (megatron_ext/tokenizer_check.py)
    out_prefix = str(Path(args.out_prefix).resolve())
    check_output_dir(Path(out_prefix).parent, "OUT_PREFIX's folder")
    shard_dir = Path(f"{out_prefix}.shards")
    with removed_if_start_fails(shard_dir):  # a failed start leaves no half-made OUT_PREFIX.shards/
        shard_dir.mkdir(parents=True, exist_ok=True)
        for stale in shard_dir.glob("*.tmp"):  # left by a run that was killed (kill -9) mid-unit
            stale.unlink()
        units = _resumable_plan(shard_dir, sources, args, tokenizer_fingerprint)
        probe = list(itertools.islice((t for u in units for t in iter_unit_texts(u, args.text_key, Counter())), 64))
    prefixes = [str(shard_dir / f"{k:06d}") for k in range(len(units))]
    todo = [k for k, p in enumerate(prefixes) if not (Path(f"{p}.idx").exists() and Path(f"{p}.bin").exists())]
    total_bytes = sum(unit_bytes(units[k]) for k in todo)
    # a Hub stream's size is unknown: then the bar counts documents only
    progress = _progress(None if any(units[k][3] == "hub" for k in todo) else total_bytes, not args.no_progress)
    t_bar = time.perf_counter()

    def tick(done_bytes: int, done_docs: int) -> None:
        if progress is not None:
            progress.update(done_bytes - progress.n)
            rate = done_docs / max(time.perf_counter() - t_bar, 1e-6)
            progress.set_postfix_str(f"{done_docs:,} docs, {rate:,.0f} docs/s", refresh=False)

    skipped: Counter = Counter()
    new_docs = 0
    backends: set[tuple[str, str]] = set()
    try:
        if todo:
            jobs = [(prefixes[k], units[k], args.text_key, args.batch_docs, MAX_LINE_BYTES) for k in todo]
            for result in run_units(jobs, args.workers, args.tokenizer, probe, tick):
                new_docs += result.documents
                skipped.update(result.counts)
                backends.add((result.backend, result.backend_reason))
    finally:
        if progress is not None:
            progress.close()
    tokenize_seconds = time.perf_counter() - t0
    total_docs, total_tokens = _merge(prefixes, out_prefix, dtype)
    dropped = {k.split(":", 1)[1]: v for k, v in sorted(skipped.items()) if k.startswith("dropped:")}
    records = skipped.get("records", 0)
    if records and not new_docs and total_docs == 0:
        raise DataError(f"not one of the {records} input records was readable ({dropped}); midm data tokenize "
                        f"reads JSON Lines with a string field {args.text_key!r}, WARC HTML responses or Parquet")
    if not args.keep_shards:
        shutil.rmtree(shard_dir)
    elapsed = time.perf_counter() - t0
    backend = ",".join(sorted({b for b, _ in backends})) or "none (every shard resumed)"
    summary = {
        "output_prefix": out_prefix, "inputs": [str(f) for f in files], "tokenizer": str(args.tokenizer),
        "tokenizer_fingerprint": tokenizer_fingerprint,
        "backend": backend, "backend_reason": "; ".join(sorted({r for _, r in backends})),
        "eos_id": int(ref.eos_id), "vocab_size": int(ref.vocab_size),
        "dtype": np.dtype(dtype).name, "documents": total_docs, "tokens": total_tokens,
        "records_read": records, "skipped": dropped, "malformed_skipped": sum(dropped.values()),
        "damaged_gzip_members": skipped.get("damaged_gzip_member", 0),
        "truncated_inputs": skipped.get("truncated_gzip", 0),
        "resumed_documents": total_docs - new_docs, "shards": len(units), "workers": args.workers,
        "seconds": round(elapsed, 3), "tokenize_seconds": round(tokenize_seconds, 3),
        "docs_per_s": round(total_docs / max(elapsed, 1e-9), 1),
        "docs_per_s_per_worker": round(total_docs / max(elapsed, 1e-9) / max(1, args.workers), 1),
        "blend": [[1.0, out_prefix]],
    }
    tmp = Path(f"{out_prefix}.summary.json.tmp")
    tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    tmp.replace(f"{out_prefix}.summary.json")
    print(json.dumps({k: summary[k] for k in ("output_prefix", "documents", "tokens", "backend", "dtype",
                                                 "seconds", "docs_per_s", "records_read", "skipped")}))
    return 0
