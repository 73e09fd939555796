"""Reading a channel folder in bounded memory: a sample of at most `max_rows` rows for fitting, and batches
for evaluation, each streamed from the Parquet files so that memory follows the sample or the batch, never
the channel.

The sample is the `max_rows` rows whose flight id hashes lowest (seeded): uniform, the same rows for the same
ids and seed however the channel is split into files, batches or row groups, and exactly `max_rows` rows.
It is found in one pass holding at most about 1.5 x `max_rows` rows: a batch's rows that hash above the
lowest `max_rows` hashes seen so far can never be in the sample and are dropped as they are read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.features import ID_COLUMN, REQUIRED_COLUMNS, Channel, numeric_columns

BATCH_ROWS = 256_000


def channel_files(path: str | Path) -> tuple[list[pq.ParquetFile], list[str]]:
    """The Parquet files of a channel folder (or one file), in name order, and the model's columns in them: the
    id, the date, the label, the categoricals, then the numeric features in the channel's column order.
    ValueError naming the file when a required column is missing or the files disagree on the features."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"channel {path}: no .parquet files found")
    # Without pre-buffering: with it the reader keeps every column chunk it read until the file is closed, so
    # streaming a one-file channel would end up holding the file.
    parquet_files = [pq.ParquetFile(f, pre_buffer=False) for f in files]
    columns: list[str] | None = None
    for file, parquet_file in zip(files, parquet_files, strict=True):
        names = parquet_file.schema_arrow.names
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            raise ValueError(f"channel {path}: columns {missing} missing in {file.name}; found {names}")
        numeric = numeric_columns(parquet_file.schema_arrow, f"channel {path}, {file.name}")
        if columns is None:
            columns = [*REQUIRED_COLUMNS, *numeric]
        elif numeric != columns[len(REQUIRED_COLUMNS):]:
            raise ValueError(f"channel {path}: {file.name} has the numeric columns {numeric}, "
                             f"{files[0].name} has {columns[len(REQUIRED_COLUMNS):]}")
    return parquet_files, columns or []


def _record_batches(parquet_files: list[pq.ParquetFile], columns: list[str],
                    batch_rows: int) -> Iterator[pa.RecordBatch]:
    for parquet_file in parquet_files:
        yield from parquet_file.iter_batches(batch_size=batch_rows, columns=columns)


def id_hashes(ids: pa.Array | pa.ChunkedArray, seed: int) -> np.ndarray:
    """A 64-bit hash of each flight id, keyed by the seed (SipHash, as pandas hashes: stable across runs,
    processes and machines)."""
    key = hashlib.blake2b(str(seed).encode(), digest_size=8).hexdigest()  # the 16 characters SipHash takes
    values = ids.to_numpy(zero_copy_only=False).astype(object)
    return pd.util.hash_array(values, hash_key=key, categorize=False)


def read_channel(path: str | Path, max_rows: int | None = None, seed: int = 0,
                 batch_rows: int = BATCH_ROWS) -> Channel:
    """The model's columns of a channel (see `channel_files`), all rows or, past `max_rows`, the `max_rows`
    rows whose ids hash lowest (module docstring), in the channel's order."""
    parquet_files, columns = channel_files(path)
    rows = sum(parquet_file.metadata.num_rows for parquet_file in parquet_files)
    batches = _record_batches(parquet_files, columns, batch_rows)
    if not max_rows or rows <= max_rows:
        table = pa.Table.from_batches(list(batches), schema=pa.schema([parquet_files[0].schema_arrow.field(c)
                                                                        for c in columns]))
        return Channel(_frame(table), rows)
    kept: list[pa.RecordBatch] = []
    kept_hashes: list[np.ndarray] = []
    kept_rows = 0
    threshold = np.iinfo(np.uint64).max  # the max_rows-th lowest hash so far, once max_rows rows were seen

    def compact() -> None:
        """Keep the max_rows lowest hashes (the earlier row on a tie), in the channel's order."""
        nonlocal kept, kept_hashes, kept_rows, threshold
        hashes = np.concatenate(kept_hashes)
        order = np.sort(np.argsort(hashes, kind="stable")[:max_rows])
        table = pa.Table.from_batches(kept).take(pa.array(order))
        kept, kept_hashes, kept_rows = table.combine_chunks().to_batches(), [hashes[order]], len(order)
        threshold = hashes[order].max()

    for batch in batches:
        hashes = id_hashes(batch.column(ID_COLUMN), seed)
        below = np.flatnonzero(hashes <= threshold)
        # `take` copies the rows kept: a batch read is a slice of its whole row group, which it would hold on to
        kept.append(batch.take(pa.array(below)))
        hashes = hashes[below]
        kept_hashes.append(hashes)
        kept_rows += len(hashes)
        if kept_rows >= max_rows + max_rows // 2 or (threshold == np.iinfo(np.uint64).max and kept_rows >= max_rows):
            compact()
    compact()
    return Channel(_frame(pa.Table.from_batches(kept)), rows)


def _frame(table: pa.Table) -> pd.DataFrame:
    """The table as pandas, its Arrow buffers freed column by column as they are converted (not held twice)."""
    return table.to_pandas(split_blocks=True, self_destruct=True)


def iter_channel(path: str | Path, batch_rows: int = BATCH_ROWS) -> Iterator[pd.DataFrame]:
    """The model's columns of every row of a channel, a frame of at most `batch_rows` rows at a time."""
    parquet_files, columns = channel_files(path)
    for batch in _record_batches(parquet_files, columns, batch_rows):
        yield batch.to_pandas()
