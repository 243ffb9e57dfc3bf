"""Collect: a batch from ``data.source`` into a snapshot, a chunk at a time.

Each chunk of the source (:func:`loopml.sources.iter_batch`, ``data.chunk_rows`` rows: files
and queries are streamed) is conformed to the schema (:func:`loopml.schema.conform_batch`) and
appended to one Parquet file through pyarrow, so only one chunk is in memory however large the
batch is; :func:`loopml.snapshots.publish_snapshot` then makes the file a snapshot. Read back,
the snapshot holds what conforming the whole batch at once gives.

Conforming decides a column's type from the values it sees. Where a later chunk's column does
not fit the type the earlier chunks gave it (text in a column that was numeric so far, say),
the batch is read whole instead, with a warning naming the column: its type then follows all
of its values, as it always has, and validation names what is wrong in it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.config import DataConfig
from loopml.io import STORAGE_ERRNOS, storage_error
from loopml.schema import conform_batch
from loopml.snapshots import Snapshot, Written, publish_snapshot, staging_path, write_snapshot
from loopml.sources import describe_source, iter_batch, read_batch
from loopml.versioning import remove_quietly

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 10.0
"""Seconds between two progress lines while a batch is written."""

_NULL_AS = {
    "numeric": pa.float64(),
    "integer": pa.float64(),
    "boolean": pa.bool_(),
    "datetime": pa.timestamp("ns"),
    "categorical": pa.string(),
}
"""The type of a column that is missing in every row of the first chunk, by its kind (a float
for integers: a missing value makes pandas' integers floats)."""


class _MixedTypes(Exception):
    """A chunk's column does not fit the type the earlier chunks gave it (caught by
    :func:`collect_snapshot`, which reads the batch whole then: never raised out of it)."""

    def __init__(self, column: str, first_row: int, found: pa.DataType, kept: pa.DataType):
        super().__init__(column)
        self.column, self.first_row, self.found, self.kept = column, first_row, found, kept


def arrow_schema(table: pa.Table, kinds: Mapping[str, str]) -> pa.Schema:
    """The first chunk's schema, a column that is missing in all of its rows given the type of
    its kind (pyarrow's null type would fit no later value)."""
    fields = [
        field.with_type(_NULL_AS[kinds[field.name]])
        if pa.types.is_null(field.type) and field.name in kinds
        else field
        for field in table.schema
    ]
    return pa.schema(fields, metadata=table.schema.metadata)


def _fit_chunk(table: pa.Table, schema: pa.Schema, first_row: int) -> pa.Table:
    """``table`` in ``schema``'s column order and types, or :class:`_MixedTypes` for the first
    column that does not fit (a cast that would lose values does not)."""
    table = table.select(schema.names)
    columns = []
    for field, column in zip(schema, table.columns, strict=True):
        if column.type == field.type:
            columns.append(column)
            continue
        try:
            columns.append(column.cast(field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            raise _MixedTypes(field.name, first_row, column.type, field.type) from None
    return pa.Table.from_arrays(columns, schema=schema)


def _conformed(data: DataConfig, root: Path) -> Iterator[pd.DataFrame]:
    for chunk in iter_batch(data.source, root, data.chunk_rows, data.table.text_columns):
        yield conform_batch(chunk, data.table, data.clean)


def _stream_to_file(chunks: Iterator[pd.DataFrame], target: Path, kinds: Mapping[str, str]) -> int:
    """Every chunk appended to one Parquet file at ``target`` (zstd, as
    :func:`loopml.io.write_parquet`): the rows written. Raises :class:`_MixedTypes` (or what the
    chunks raise) with ``target`` possibly half-written: the caller removes it."""
    writer: pq.ParquetWriter | None = None
    rows, started, shown = 0, time.monotonic(), time.monotonic()
    try:
        for chunk in chunks:
            table = pa.Table.from_pandas(chunk, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(target, arrow_schema(table, kinds), compression="zstd")
            writer.write_table(_fit_chunk(table, writer.schema, rows))
            rows += len(chunk)
            if time.monotonic() - shown >= PROGRESS_EVERY_S:
                shown = time.monotonic()
                log.info("collect: %s rows written (%.0f s)", f"{rows:,}", shown - started)
    finally:
        if writer is not None:
            writer.close()
    return rows


def collect_snapshot(
    data: DataConfig, root: Path, snapshots_dir: Path, current_pointer: Path
) -> Snapshot:
    """The batch of ``data.source`` (relative paths against ``root``), conformed to
    ``data.schema``, as an immutable DVC-versioned snapshot; ``current`` points to it.

    Raises :class:`loopml.exceptions.SourceError` for a missing, unreadable or empty source or
    missing columns; nothing of a failed collect is left in ``snapshots_dir``."""
    source = describe_source(data.source)
    started = time.perf_counter()
    staging = staging_path(snapshots_dir)
    try:
        rows = _stream_to_file(_conformed(data, root), staging, data.table.kinds)
    except _MixedTypes as mixed:
        remove_quietly(staging)
        log.warning(
            "column '%s': the chunk from row %s on reads as %s where the rows before read as "
            "%s; reading the batch whole instead of %s rows at a time (data.chunk_rows), so its "
            "type follows all of its values",
            mixed.column, f"{mixed.first_row:,}", mixed.found, mixed.kept, f"{data.chunk_rows:,}",
        )  # fmt: skip
        raw = read_batch(data.source, root, data.table.text_columns)
        frame = conform_batch(raw, data.table, data.clean)
        return write_snapshot(frame, snapshots_dir, current_pointer, source, data.versioning)
    except OSError as exc:
        remove_quietly(staging)
        if exc.errno in STORAGE_ERRNOS:  # pyarrow's write errors carry the errno
            raise storage_error(staging, exc) from exc
        raise
    except BaseException:
        remove_quietly(staging)
        raise
    columns = pq.read_schema(staging).names
    log.info(
        "read and wrote %s rows x %s columns from %s in %.2fs",
        f"{rows:,}", len(columns), source, time.perf_counter() - started,
    )  # fmt: skip
    written = Written(staging, rows, columns)
    return publish_snapshot(written, current_pointer, source, data.versioning)
