"""A snapshot read in batches of rows, each with the dtypes the whole snapshot reads with.

Reading a Parquet file one row group at a time gives each batch its own pandas dtypes: an integer
column with a gap in one row group reads as float there and as int elsewhere, a boolean column
with a gap as object. :class:`SnapshotBatches` gives every batch the dtype ``pd.read_parquet``
gives the whole file (from the file's null counts), so a value reads the same in every batch and
validating the batches finds what validating the whole snapshot finds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.exceptions import IntegrityError
from loopml.snapshots import Snapshot, verify_snapshot

log = logging.getLogger(__name__)
_T = TypeVar("_T")


def _whole_file_dtypes(parquet: pq.ParquetFile) -> dict[str, str]:
    """The columns whose whole-file dtype differs from a gap-free batch's: numpy integers with a
    null somewhere read as float64, numpy booleans with a null somewhere as object (pandas'
    rule; columns stored as pandas' nullable types keep them either way)."""
    meta, schema = parquet.metadata, parquet.schema_arrow
    gap_free = schema.empty_table().to_pandas().dtypes
    changed: dict[str, str] = {}
    for j, name in enumerate(schema.names):
        dtype = gap_free.get(name)
        if not isinstance(dtype, np.dtype) or dtype.kind not in "iub":
            continue
        nulls = 0
        for i in range(meta.num_row_groups):
            stats = meta.row_group(i).column(j).statistics
            # Without statistics, the column counts as having gaps: read as the wider dtype.
            nulls += 1 if stats is None or not stats.has_null_count else stats.null_count
        if nulls:
            changed[name] = "object" if dtype.kind == "b" else "float64"
    return changed


@dataclass
class SnapshotBatches:
    """The rows of a verified snapshot, whole or ``batch_rows`` at a time."""

    path: Path
    rows: int
    batch_rows: int
    _whole: pd.DataFrame | None = field(default=None, repr=False)

    @classmethod
    def of(cls, frame: pd.DataFrame) -> SnapshotBatches:
        """Rows already in memory, as one batch."""
        return cls(
            path=Path("<memory>"), rows=len(frame), batch_rows=max(len(frame), 1), _whole=frame
        )

    @property
    def batched(self) -> bool:
        """Whether the snapshot is read in more than one batch."""
        return self.rows > self.batch_rows

    def whole(self) -> pd.DataFrame:
        """Every row at once (read once, then kept)."""
        if self._whole is None:
            self._whole = self._read(lambda: pd.read_parquet(self.path))
        return self._whole

    def __iter__(self) -> Iterator[pd.DataFrame]:
        """The batches, in file order, indexed by their row numbers in the snapshot."""
        if not self.batched:
            yield self.whole()
            return
        parquet = self._read(lambda: pq.ParquetFile(self.path))
        changed = _whole_file_dtypes(parquet)
        start = 0
        schema = parquet.schema_arrow  # with pandas' metadata: its dtypes, as a whole read
        for record_batch in parquet.iter_batches(batch_size=self.batch_rows):
            frame = pa.Table.from_batches([record_batch], schema=schema).to_pandas()
            for name, dtype in changed.items():
                if frame[name].dtype != dtype:
                    frame[name] = frame[name].astype(dtype)
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame
            del frame, record_batch  # not held while the next batch is read

    def sample(self, rows: int, seed: int = 0) -> pd.DataFrame:
        """A uniform random sample of ``rows`` rows (all of them when there are fewer), in file
        order, the same for the same snapshot and seed."""
        if rows >= self.rows:
            return self.whole()
        chosen = np.sort(np.random.default_rng(seed).choice(self.rows, size=rows, replace=False))
        parts = []
        for frame in self:
            lo, hi = np.searchsorted(chosen, [frame.index[0], frame.index[-1] + 1])
            parts.append(frame.loc[chosen[lo:hi]])
        return pd.concat(parts)

    def _read(self, read: Callable[[], _T]) -> _T:
        return _readable(self.path, read)


def _readable(path: Path, read: Callable[[], _T]) -> _T:
    try:
        return read()
    except Exception as exc:  # pyarrow's own errors; a matching md5 makes this unlikely
        raise IntegrityError(f"snapshot {path} is not readable as Parquet: {exc}") from None


def open_batches(snapshot: Snapshot, batch_rows: int) -> SnapshotBatches:
    """The snapshot's rows, verified against its version first
    (:func:`loopml.snapshots.verify_snapshot`), to be read ``batch_rows`` at a time."""
    path = verify_snapshot(snapshot)
    rows = _readable(path, lambda: pq.ParquetFile(path).metadata.num_rows)
    return SnapshotBatches(path=path, rows=rows, batch_rows=batch_rows)
