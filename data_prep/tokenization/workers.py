"""The worker side of ``midm data tokenize``: one unit in, one Megatron shard out, nothing left behind.

Workers are forked from a parent that has not encoded anything: a child forked after a Rust thread pool ran (``tokenizers``/``gigatoken``
``encode_batch``) can wait forever on threads that did not survive the fork, so the encoders are
built — and the fast one checked against the reference on the probe batch — in each worker.
Workers report progress through shared counters, stop at the next batch when the parent sets
``stop`` (an error elsewhere, Ctrl-C), and delete their ``*.tmp`` files on every way out;
``concurrent.futures`` notices a worker that dies (``BrokenProcessPool``) instead of waiting for
it, where ``multiprocessing.Pool`` could hang in ``terminate()`` with its workers left as zombies.
"""
from __future__ import annotations

import multiprocessing as mp
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field

import numpy as np

from data_prep.tokenization.units import Unit, iter_unit_texts

_STATE: dict = {}


class Stopped(Exception):
    """The parent asked the workers to stop (another unit failed, or the run was interrupted)."""


@dataclass
class UnitResult:
    prefix: str
    documents: int
    tokens: int
    counts: dict = field(default_factory=dict)
    backend: str = ""
    backend_reason: str = ""


def dtype_for(vocab_size: int):
    """Megatron's rule: uint16 ids below 65,500, int32 above."""
    return np.uint16 if vocab_size < 65500 else np.int32


def _init_worker(tokenizer_dir: str, probe: list[str], done_bytes, done_docs, stop) -> None:
    import signal

    from data_prep.tokenization.encoder import BatchEncoder

    # Ctrl-C reaches the whole process group: the parent alone handles it (sets ``stop``), so no
    # worker prints a KeyboardInterrupt traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    _STATE.update(encoder=BatchEncoder(tokenizer_dir, probe, quiet=True), done_bytes=done_bytes,
                  done_docs=done_docs, stop=stop)


def _add(counter, n: int) -> None:
    if counter is not None and n:
        with counter.get_lock():
            counter.value += n


def tokenize_unit(shard_prefix: str, unit: Unit, key: str, batch_docs: int, max_line_bytes: int | None) -> UnitResult:
    """Tokenize one unit into ``shard_prefix.bin/.idx`` (written as ``.tmp``, renamed when complete)."""
    from data_prep.tokenization.indexed import ShardWriter

    enc = _STATE["encoder"]
    stop = _STATE.get("stop")
    done_docs, done_bytes = _STATE.get("done_docs"), _STATE.get("done_bytes")
    counts: Counter = Counter()
    n_docs = n_tokens = 0
    batch: list[str] = []
    shard = ShardWriter(shard_prefix, dtype_for(enc.vocab_size))
    try:
        def flush() -> None:
            nonlocal n_docs, n_tokens
            if stop is not None and stop.is_set():
                raise Stopped(shard_prefix)
            flat, lengths = enc.encode_with_eod(batch)
            shard.add_batch(flat, lengths)
            n_docs += len(batch)
            n_tokens += int(lengths.sum())
            _add(done_docs, len(batch))
            batch.clear()

        for text in iter_unit_texts(unit, key, counts, max_line_bytes, on_position=lambda n: _add(done_bytes, n)):
            batch.append(text)
            if len(batch) >= batch_docs:
                flush()
        if batch:
            flush()
        shard.close()
    finally:
        shard.discard()
    return UnitResult(shard_prefix, n_docs, n_tokens, dict(counts), enc.backend, enc.backend_reason)


def run_units(jobs: list[tuple], workers: int, tokenizer_dir: str, probe: list[str],
              on_tick: Callable[[int, int], None] | None = None) -> list[UnitResult]:
    """Run ``tokenize_unit(*job)`` for every job on ``workers`` processes; results in completion order.

    ``on_tick(bytes_done, docs_done)`` is called about once a second. The first failing unit
    stops the others at their next batch and its exception is raised here; no ``*.tmp`` remains.
    """
    ctx = mp.get_context("fork")
    done_bytes, done_docs, stop = ctx.Value("q", 0), ctx.Value("q", 0), ctx.Event()
    results: list[UnitResult] = []
    pool = ProcessPoolExecutor(max_workers=max(1, min(workers, len(jobs))), mp_context=ctx,
                               initializer=_init_worker, initargs=(tokenizer_dir, probe, done_bytes, done_docs, stop))
    try:
        pending = {pool.submit(tokenize_unit, *job) for job in jobs}
        last = 0.0
        while pending:
            finished, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for fut in finished:
                results.append(fut.result())
            if on_tick is not None and (time.monotonic() - last >= 1.0 or not pending):
                on_tick(done_bytes.value, done_docs.value)
                last = time.monotonic()
    except BaseException:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results
