"""Collect a chunk at a time: the snapshot read back equals conforming the whole batch at once,
for CSV, Parquet, folders and the generator; a column whose type changes between chunks falls
back to the whole batch with a warning naming it; a failed collect leaves nothing behind."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from loopml.collect import collect_snapshot
from loopml.config import DataConfig
from loopml.datagen import SCHEMA, generate_churn
from loopml.exceptions import SourceError
from loopml.schema import conform_batch
from loopml.snapshots import Snapshot, write_snapshot
from loopml.sources import read_batch

SCHEMA_CFG = {
    "columns": SCHEMA,
    "target": "churned",
    "id_column": "customer_id",
    "time_column": "event_time",
    "derived": {"charge_per_month": "total_charges / (tenure_months + 1)"},
}


def _data(source: dict[str, Any], chunk_rows: int, versioning: bool = False) -> DataConfig:
    return DataConfig.model_validate(
        {
            "source": source,
            "schema": SCHEMA_CFG,
            "chunk_rows": chunk_rows,
            "versioning": {"enabled": versioning},
        }
    )


def _streamed(data: DataConfig, root: Path, sub: str = "streamed") -> Snapshot:
    return collect_snapshot(data, root, root / sub, root / f"{sub}.json")


def _whole(data: DataConfig, root: Path) -> pd.DataFrame:
    """What collect wrote before it streamed: the whole batch conformed, then one file."""
    raw = read_batch(data.source, root, data.table.text_columns)
    frame = conform_batch(raw, data.table, data.clean)
    snap = write_snapshot(frame, root / "whole", root / "whole.json", "test", data.versioning)
    return pd.read_parquet(snap.path)


def _awkward(n: int) -> pd.DataFrame:
    """Churn rows whose chunks differ: an integer column missing only in the last rows, a
    categorical column missing in all of the first rows, a boolean column with gaps from the
    middle on, codes that look like numbers."""
    frame = generate_churn(n, seed=3)
    frame.loc[n - 50 :, "referrals"] = np.nan
    frame["device"] = frame["device"].astype(object)
    frame.loc[: n // 3, "device"] = None
    frame["autopay"] = frame["autopay"].astype(object)
    frame.loc[n // 2 :: 7, "autopay"] = None
    frame["payment_method"] = (frame.index % 5).astype(str)
    frame.loc[n // 2 :: 11, "payment_method"] = None
    return frame


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_streamed_file_reads_back_as_the_whole_batch(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"batch.{fmt}"
    frame = _awkward(3000)
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False, row_group_size=700)
    data = _data({"kind": "file", "file": {"path": str(path)}}, chunk_rows=700)
    snap = _streamed(data, tmp_path)
    got = pd.read_parquet(snap.path)
    pd.testing.assert_frame_equal(got, _whole(data, tmp_path))
    assert snap.rows == 3000 and snap.columns == list(got.columns)
    assert pq.ParquetFile(snap.path).num_row_groups == 5  # written a chunk at a time
    assert got["payment_method"].dropna().isin(list("01234")).all()  # codes, not 1.0
    assert "charge_per_month" in got.columns  # derived per chunk


def test_a_folder_of_csv_and_parquet_files_streams(tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    frame = _awkward(2400)
    frame.iloc[:1000].to_csv(folder / "a.csv", index=False)
    frame.iloc[1000:].to_parquet(folder / "b.parquet", index=False)
    data = _data({"kind": "file", "file": {"path": str(folder)}}, chunk_rows=600)
    snap = _streamed(data, tmp_path)
    pd.testing.assert_frame_equal(pd.read_parquet(snap.path), _whole(data, tmp_path))
    assert pq.ParquetFile(snap.path).num_row_groups == 5  # 600 + 400 from a, 600 + 600 + 200


def test_the_generator_streams_in_slices(tmp_path: Path) -> None:
    source = {"kind": "generator", "generator": {"n_rows": 2500, "seed": 4}}
    data = _data(source, chunk_rows=1000)
    snap = _streamed(data, tmp_path)
    pd.testing.assert_frame_equal(pd.read_parquet(snap.path), _whole(data, tmp_path))
    assert pq.ParquetFile(snap.path).num_row_groups == 3


def test_the_same_batch_gives_the_same_version(tmp_path: Path) -> None:
    path = tmp_path / "batch.csv"
    generate_churn(1500, seed=8).to_csv(path, index=False)
    data = _data({"kind": "file", "file": {"path": str(path)}}, chunk_rows=400)
    first, second = _streamed(data, tmp_path, "one"), _streamed(data, tmp_path, "two")
    assert first.version == second.version


def test_a_column_whose_type_changes_between_chunks_reads_the_batch_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "batch.csv"
    frame = generate_churn(2000, seed=5)
    frame["monthly_charges"] = frame["monthly_charges"].astype(object)
    frame.loc[1900, "monthly_charges"] = "unknown"  # text only in the last chunk
    frame.to_csv(path, index=False)
    data = _data({"kind": "file", "file": {"path": str(path)}}, chunk_rows=500)
    with caplog.at_level(logging.WARNING, logger="loopml.collect"):
        snap = _streamed(data, tmp_path)
    got = pd.read_parquet(snap.path)
    pd.testing.assert_frame_equal(got, _whole(data, tmp_path))
    assert got["monthly_charges"].dtype == object  # text: validation names the column
    assert "column 'monthly_charges'" in caplog.text and "row 1,500" in caplog.text
    assert [p.name for p in (tmp_path / "streamed").iterdir()] == [Path(snap.path).name]


def test_a_later_file_without_a_column_fails_and_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "raw"
    folder.mkdir()
    frame = generate_churn(1200, seed=6)
    frame.iloc[:600].to_csv(folder / "a.csv", index=False)
    frame.iloc[600:].drop(columns=["plan"]).to_csv(folder / "b.csv", index=False)
    data = _data({"kind": "file", "file": {"path": str(folder)}}, chunk_rows=200)
    with pytest.raises(SourceError, match=r"declared column\(s\) missing: 'plan'"):
        _streamed(data, tmp_path)
    assert list((tmp_path / "streamed").iterdir()) == []
    assert not (tmp_path / "streamed.json").exists()


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "batch.csv"
    generate_churn(10, seed=1).head(0).to_csv(path, index=False)
    data = _data({"kind": "file", "file": {"path": str(path)}}, chunk_rows=100)
    with pytest.raises(SourceError, match="the batch is empty"):
        _streamed(data, tmp_path)
    assert list((tmp_path / "streamed").iterdir()) == []


def test_a_streamed_snapshot_is_versioned_with_dvc(dvc_repo: Path) -> None:
    path = dvc_repo / "batch.parquet"
    generate_churn(1000, seed=2).to_parquet(path, index=False)
    data = _data({"kind": "file", "file": {"path": str(path)}}, chunk_rows=300, versioning=True)
    snap = _streamed(data, dvc_repo, "data/snapshots")
    dvc_file = Path(snap.path + ".dvc")
    assert snap.dvc_tracked and f"md5: {snap.version}" in dvc_file.read_text()


def test_monitoring_reads_a_csv_batch_as_collect_does(tmp_path: Path) -> None:
    """``monitor.current: source`` conforms a new batch as collect does: number-like codes of a
    categorical column stay ``"3"`` beside a missing value (not ``"3.0"``)."""
    from loopml.config import MonitorConfig
    from loopml.monitoring.data import current_data

    path = tmp_path / "batch.csv"
    _awkward(1000).to_csv(path, index=False)
    data = _data({"kind": "file", "file": {"path": str(path)}}, chunk_rows=300)
    snapshot = pd.read_parquet(_streamed(data, tmp_path).path)
    current = current_data(
        MonitorConfig(current="source"), tmp_path / "none.sqlite", data.source, tmp_path,
        data.table, data.clean,
    )  # fmt: skip
    assert set(current["payment_method"].dropna()) == set("01234")
    pd.testing.assert_series_equal(current["payment_method"], snapshot["payment_method"])
