"""Documents out of Parquet files (FineWeb-2's shards) and Hugging Face Hub datasets.

A row is a record: ``text`` is the document, ``id`` its id (generated from file and row when the
table has none), every other column — FineWeb-2's ``url``, ``dump``, ``date``, ``file_path``,
``language``, ``language_score``, ``language_script``, ``minhash_cluster_size``, ``top_langs`` … —
is kept as metadata and written back unchanged. Rows are dropped by the ``input`` stage as
``missing_text`` (null or not a string) or ``empty`` (whitespace only); a Parquet row group that
cannot be read (a damaged page, a bad checksum) drops its rows, known from the file footer, as
``damaged_row_group``, and the next row group is read.

Hub datasets are read with 🤗 ``datasets`` in streaming mode (``load_dataset(id, name=config,
split=split, streaming=True)``): online by id, offline from a local directory in the Hub layout
(``data/…/*.parquet``, optionally a README.md whose ``configs:`` name the files; with
``HF_HUB_OFFLINE=1`` an id resolves through the local cache only). With several tasks each
takes its part of the stream (``datasets.distributed.split_dataset_by_node``).
"""
from __future__ import annotations

import datetime
import decimal
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from data_prep.docio.drops import drop
from data_prep.errors import DataError

BATCH_ROWS = 1024


def _jsonable(value):
    """A Parquet/Arrow value as something JSON can hold (dates as ISO strings, bytes as hex)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return str(value)


def rows_to_records(rows: Iterable[dict], counts: Counter, where: str, text_key: str = "text",
                    start: int = 0) -> Iterator[dict]:
    """Usable rows as ``{"id", "text", **metadata}``; ``counts['records']`` and drops updated."""
    for n, row in enumerate(rows, start):
        counts["records"] += 1
        text = row.get(text_key)
        if not isinstance(text, str):
            drop(counts, "missing_text", file=where, row=n, id=_jsonable(row.get("id")))
            continue
        if not text or text.isspace():
            drop(counts, "empty", file=where, row=n, id=_jsonable(row.get("id")))
            continue
        record = {k: _jsonable(v) for k, v in row.items() if k not in (text_key, "id")}
        doc_id = row.get("id")
        if doc_id is None:
            doc_id = f"{where}#{n}"
            record["_midm_generated_id"] = True
        yield {"id": str(doc_id), "text": text, **record}


def parquet_problem(path: str, text_key: str = "text") -> str | None:
    """``None`` for a readable Parquet file with a string column ``text_key``; else what is wrong."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(path).schema_arrow
    except (OSError, pa.ArrowException) as err:
        return f"not a readable Parquet file ({str(err).splitlines()[0][:120]})"
    if text_key not in schema.names:
        return f"a Parquet file without a {text_key!r} column (columns: {', '.join(schema.names[:12])})"
    kind = schema.field(text_key).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_string_view(kind)):
        return f"a Parquet file whose {text_key!r} column is {kind}, not a string"
    return None


def iter_parquet(path: str, counts: Counter, text_key: str = "text",
                 on_position: Callable[[int], None] | None = None) -> Iterator[dict]:
    """Documents of one Parquet file, row group by row group (memory: one batch of ``BATCH_ROWS``).
    ``on_position(bytes)`` after each batch: the file size × the fraction of its rows read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    size, total = os.path.getsize(path), max(1, pf.metadata.num_rows)
    row = 0
    for group in range(pf.num_row_groups):
        n_rows = pf.metadata.row_group(group).num_rows
        done = 0
        try:
            for batch in pf.iter_batches(batch_size=BATCH_ROWS, row_groups=[group]):
                rows = batch.to_pylist()
                yield from rows_to_records(rows, counts, path, text_key, start=row + done)
                done += len(rows)
                if on_position is not None:
                    on_position(size * (row + done) // total)
        except (OSError, pa.ArrowException):
            counts["records"] += n_rows - done
            drop(counts, "damaged_row_group", n_rows - done, file=path, row_group=group, first_row=row + done)
        row += n_rows


def load_hub(source: str, config: str | None, split: str, text_key: str = "text"):
    """The streaming dataset behind a Hub id or a local Hub-layout directory.

    Raises :class:`DataError` when it cannot be loaded (unknown id, offline without a local copy,
    an unknown config or split) or has no ``text_key`` column.
    """
    import datasets

    datasets.logging.set_verbosity_error()
    try:
        ds = datasets.load_dataset(source, name=config, split=split, streaming=True)
    except Exception as err:  # datasets raises many types (FileNotFoundError, ValueError, ConnectionError, …)
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise DataError(f"{source}: cannot load it as a Hugging Face dataset "
                        f"(config={config!r}, split={split!r}): {type(err).__name__}: {first}") from None
    features = getattr(ds, "features", None)
    if features is not None and text_key not in features:
        raise DataError(f"{source}: the dataset has no {text_key!r} column (columns: {', '.join(list(features)[:12])})")
    return ds


def iter_hub(source: str, counts: Counter, config: str | None = None, split: str = "train", text_key: str = "text",
             rank: int = 0, world_size: int = 1) -> Iterator[dict]:
    """Documents of rank ``rank``'s part (of ``world_size``) of a Hub dataset, streamed."""
    ds = load_hub(source, config, split, text_key)
    if world_size > 1:
        from datasets.distributed import split_dataset_by_node

        ds = split_dataset_by_node(ds, rank=rank, world_size=world_size)
    where = f"{source}:{split}" + (f":{rank}of{world_size}" if world_size > 1 else "")
    yield from rows_to_records(ds, counts, where, text_key)
