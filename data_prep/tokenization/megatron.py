"""``midm data tokenize IN OUT_PREFIX --tokenizer DIR --workers N`` → Megatron ``.bin/.idx``.

Design (vs. Megatron-LM's ``tools/preprocess_data.py``, which reads every document in one
process, pickles it to a worker and pickles its ids back to one writer):

* the input is cut into *units*: byte ranges of ``--shard-mb`` aligned to line ends for plain
  ``.jsonl`` (workers seek there themselves — no text travels between processes), one unit per
  ``.jsonl.gz`` (not seekable; streamed). Each worker tokenises its unit in batches and writes
  ``OUT_PREFIX.shards/{k}.bin/.idx`` with Megatron-Core's ``IndexedDatasetBuilder``;
* memory is bounded by one batch of text per worker, however large the input;
* a unit is done when its ``.idx`` exists (renamed into place last), so an interrupted run
  resumes where it stopped;
* units are concatenated in input order into ``OUT_PREFIX.bin/.idx`` with ``add_index`` (a
  byte copy): one document per sequence, EOD (``eos_id``) appended, uint16 when the vocabulary
  has fewer than 65,500 ids, else int32;
* ``OUT_PREFIX.summary.json`` records documents, tokens, throughput and the blend entry.
"""
from __future__ import annotations

import gzip
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

_ENCODER = None


def _input_files(path: str) -> list[Path]:
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file() and ".jsonl" in f.name) if p.is_dir() else [p]
    if not files or not all(f.is_file() for f in files):
        raise SystemExit(f"error: no .jsonl/.jsonl.gz input at {path}")
    return files


def plan_units(files: list[Path], shard_bytes: int) -> list[tuple[str, int, int | None]]:
    """(file, start, end) byte ranges ending on line boundaries; gzip files are one unit."""
    units: list[tuple[str, int, int | None]] = []
    for f in files:
        if f.name.endswith(".gz"):
            units.append((str(f), 0, None))
            continue
        size, pos = f.stat().st_size, 0
        with open(f, "rb") as fh:
            while pos < size:
                end = min(size, pos + shard_bytes)
                if end < size:
                    fh.seek(end)
                    fh.readline()
                    end = fh.tell()
                units.append((str(f), pos, end))
                pos = end
    return units


def iter_unit_texts(unit: tuple[str, int, int | None], key: str, counts: dict):
    """Texts of one unit; malformed lines and a truncated gzip tail are counted, never fatal."""
    import orjson

    path, start, end = unit
    opener = gzip.open if end is None else open
    try:
        with opener(path, "rb") as fh:
            if end is not None:
                fh.seek(start)
            pos = start
            for raw in fh:
                if end is not None:
                    pos += len(raw)
                    if pos > end:
                        break
                if not raw.strip():
                    continue
                try:
                    text = orjson.loads(raw)[key]
                except (orjson.JSONDecodeError, KeyError, TypeError):
                    counts["malformed"] += 1
                    continue
                if isinstance(text, str) and text:
                    yield text
                else:
                    counts["malformed"] += 1
                if end is not None and pos >= end:
                    break
    except (EOFError, OSError):
        counts["truncated"] += 1  # keep what was read before the damage


def dtype_for(vocab_size: int):
    return np.uint16 if vocab_size < 65500 else np.int32


def _init_worker(tokenizer_dir: str, probe: list[str]) -> None:
    global _ENCODER
    from data_prep.tokenization.encoder import BatchEncoder

    _ENCODER = BatchEncoder(tokenizer_dir, probe)


def tokenize_unit(shard_prefix: str, unit, key: str, batch_docs: int) -> tuple[str, int, int, dict]:
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    enc = _ENCODER
    dtype = dtype_for(enc.vocab_size)
    tmp_bin, tmp_idx = f"{shard_prefix}.bin.tmp", f"{shard_prefix}.idx.tmp"
    builder = IndexedDatasetBuilder(tmp_bin, dtype=dtype)
    counts = {"malformed": 0, "truncated": 0}
    n_docs = n_tokens = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal n_docs, n_tokens
        flat, lengths = enc.encode_with_eod(batch)
        flat = flat.astype(dtype, copy=False)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        for i, n in enumerate(lengths):
            builder.add_document(flat[offsets[i]:offsets[i + 1]], [int(n)])
        n_docs += len(batch)
        n_tokens += int(lengths.sum())
        batch.clear()

    for text in iter_unit_texts(unit, key, counts):
        batch.append(text)
        if len(batch) >= batch_docs:
            flush()
    if batch:
        flush()
    builder.finalize(tmp_idx)
    os.replace(tmp_bin, f"{shard_prefix}.bin")
    os.replace(tmp_idx, f"{shard_prefix}.idx")  # the .idx marks the unit as done
    return shard_prefix, n_docs, n_tokens, counts


def main_tokenize(args) -> int:
    import itertools

    from data_prep.tokenization.encoder import BatchEncoder

    t0 = time.perf_counter()
    files = _input_files(args.input)
    out_prefix = str(Path(args.out_prefix).resolve())
    shard_dir = Path(f"{out_prefix}.shards")
    shard_dir.mkdir(parents=True, exist_ok=True)
    units = plan_units(files, max(1, int(args.shard_mb * 1e6)))
    scratch = {"malformed": 0, "truncated": 0}
    probe = list(itertools.islice((t for u in units for t in iter_unit_texts(u, args.text_key, scratch)), 64))
    encoder = BatchEncoder(args.tokenizer, probe)  # fail fast on a bad tokenizer dir, in the parent
    dtype = dtype_for(encoder.vocab_size)
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder, _IndexReader  # once, pre-fork

    progress = None
    if not args.no_progress:
        from tqdm import tqdm

        progress = tqdm(unit="docs", desc="tokenize", mininterval=1.0, file=sys.stderr)
    prefixes = [str(shard_dir / f"{k:06d}") for k in range(len(units))]
    todo = [k for k, p in enumerate(prefixes) if not (Path(f"{p}.idx").exists() and Path(f"{p}.bin").exists())]
    bad = {"malformed": 0, "truncated": 0}
    new_docs = 0
    if todo:
        ctx = mp.get_context("fork")
        with ctx.Pool(max(1, min(args.workers, len(todo))), initializer=_init_worker,
                      initargs=(args.tokenizer, probe)) as pool:
            jobs = [(prefixes[k], units[k], args.text_key, args.batch_docs) for k in todo]
            for _, n_docs, _, counts in pool.imap_unordered(_run_job, jobs):
                new_docs += n_docs
                for key in bad:
                    bad[key] += counts[key]
                if progress is not None:
                    progress.update(n_docs)
    if progress is not None:
        progress.close()
    tokenize_seconds = time.perf_counter() - t0
    merged = IndexedDatasetBuilder(f"{out_prefix}.bin", dtype=dtype)
    total_docs = total_tokens = 0
    for prefix in prefixes:
        merged.add_index(prefix)
        idx = _IndexReader(f"{prefix}.idx", multimodal=False)
        total_docs += len(idx.document_indices) - 1
        total_tokens += int(np.sum(idx.sequence_lengths))
    merged.finalize(f"{out_prefix}.idx")
    if not args.keep_shards:
        shutil.rmtree(shard_dir)
    elapsed = time.perf_counter() - t0
    summary = {
        "output_prefix": out_prefix, "inputs": [str(f) for f in files], "tokenizer": str(args.tokenizer),
        "backend": encoder.backend, "eos_id": encoder.eos_id, "vocab_size": encoder.vocab_size,
        "dtype": np.dtype(dtype).name, "documents": total_docs, "tokens": total_tokens,
        "malformed_skipped": bad["malformed"], "truncated_inputs": bad["truncated"],
        "resumed_documents": total_docs - new_docs, "shards": len(units), "workers": args.workers,
        "seconds": round(elapsed, 3), "tokenize_seconds": round(tokenize_seconds, 3),
        "docs_per_s": round(total_docs / max(elapsed, 1e-9), 1),
        "docs_per_s_per_worker": round(total_docs / max(elapsed, 1e-9) / max(1, args.workers), 1),
        "blend": [[1.0, out_prefix]],
    }
    Path(f"{out_prefix}.summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(json.dumps({k: summary[k] for k in ("output_prefix", "documents", "tokens", "backend", "dtype",
                                                 "seconds", "docs_per_s")}))
    return 0


def _run_job(job):
    return tokenize_unit(*job)
