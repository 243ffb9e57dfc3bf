"""Reading a snapshot in batches: every batch has the whole file's dtypes; the sample is a
uniform, repeatable subset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pyarrow as pa
import pyarrow.parquet as pq

from loopml.snapshot_batches import SnapshotBatches


def _snapshot(tmp_path: Path) -> SnapshotBatches:
    table = pa.table(
        {
            "count": pa.array([*range(999), None], pa.int64()),  # a gap in the last rows only
            "flag": pa.array([None, *([True, False] * 499), True]),  # a gap in the first only
            "code": [f"c{i % 7}" for i in range(1000)],
            "x": np.linspace(-1, 1, 1000),
        }
    )
    path = tmp_path / "s.parquet"
    pq.write_table(table, path, row_group_size=250)
    return SnapshotBatches(path=path, rows=1000, batch_rows=300)


def test_every_batch_reads_with_the_whole_files_dtypes(tmp_path: Path) -> None:
    batches = _snapshot(tmp_path)
    whole = pd.read_parquet(batches.path)
    parts = list(batches)
    assert [len(p) for p in parts] == [300, 300, 300, 100]
    assert str(whole["count"].dtype) == "float64" and whole["flag"].dtype == object
    for part in parts:
        assert part.dtypes.to_dict() == whole.dtypes.to_dict()
    pdt.assert_frame_equal(pd.concat(parts), whole)


def test_the_sample_is_a_repeatable_uniform_subset(tmp_path: Path) -> None:
    batches = _snapshot(tmp_path)
    whole = pd.read_parquet(batches.path)
    sample = batches.sample(200, seed=3)
    assert len(sample) == 200 and sample.index.is_monotonic_increasing
    pdt.assert_frame_equal(sample, whole.loc[sample.index])
    pdt.assert_frame_equal(batches.sample(200, seed=3), sample)
    assert not batches.sample(200, seed=4).index.equals(sample.index)
    assert sample.index.max() > 750 and sample.index.min() < 250  # from all over the file
    assert batches.sample(5000).equals(whole)
