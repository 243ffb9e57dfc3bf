"""A real PostgreSQL table as a source gives the same snapshot as the equivalent CSV."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from loopml.config import (
    FileSource,
    SchemaConfig,
    SourceConfig,
    SqlSource,
    VersioningConfig,
)
from loopml.datagen import SCHEMA, generate_churn
from loopml.exceptions import SourceError
from loopml.schema import conform_frame
from loopml.snapshots import write_snapshot
from loopml.sources import read_batch

PG_URL = os.environ.get("LOOPML_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.db,
    pytest.mark.skipif(
        not PG_URL, reason="LOOPML_TEST_POSTGRES_URL is not set (no PostgreSQL to test against)"
    ),
]
SCHEMA_CFG = SchemaConfig(
    columns=SCHEMA, target="churned", id_column="customer_id", time_column="event_time"
)


@pytest.fixture
def pg_table() -> Iterator[tuple[str, pd.DataFrame]]:
    import sqlalchemy as sa

    frame = generate_churn(2000, seed=21)
    name = f"loopml_test_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(PG_URL)
    frame.to_sql(name, engine, index=False)
    try:
        yield name, frame
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
        engine.dispose()


def _collect(source: SourceConfig, repo: Path, sub: str):
    frame = read_batch(source, repo)
    frame = conform_frame(frame, SCHEMA_CFG.columns)
    return write_snapshot(
        frame=frame,
        snapshots_dir=repo / sub,
        current_pointer=repo / f"{sub}.json",
        source="test",
        versioning=VersioningConfig(),
    )


def test_postgres_and_csv_give_the_same_snapshot(
    dvc_repo: Path, pg_table: tuple[str, pd.DataFrame]
) -> None:
    table, frame = pg_table
    csv = dvc_repo / "customers.csv"
    frame.to_csv(csv, index=False)
    from_sql = _collect(
        SourceConfig(
            kind="sql",
            sql=SqlSource(url=PG_URL, query=f'SELECT * FROM "{table}" ORDER BY customer_id'),
        ),
        dvc_repo,
        "sql",
    )
    from_csv = _collect(SourceConfig(kind="file", file=FileSource(path=csv)), dvc_repo, "csv")
    assert from_sql.rows == from_csv.rows == 2000
    pd.testing.assert_frame_equal(pd.read_parquet(from_sql.path), pd.read_parquet(from_csv.path))
    assert from_sql.version == from_csv.version
    assert from_sql.dvc_tracked


def test_empty_query_and_bad_query(dvc_repo: Path, pg_table: tuple[str, pd.DataFrame]) -> None:
    table, _ = pg_table
    empty = SourceConfig(
        kind="sql", sql=SqlSource(url=PG_URL, query=f'SELECT * FROM "{table}" WHERE false')
    )
    with pytest.raises(SourceError, match="empty"):
        read_batch(empty, dvc_repo)
    bad = SourceConfig(kind="sql", sql=SqlSource(url=PG_URL, query="SELECT * FROM no_such_table"))
    with pytest.raises(SourceError, match="query failed"):
        read_batch(bad, dvc_repo)


def test_unreachable_database_is_transient(dvc_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOOPML_T_UNREACHABLE", "postgresql://nobody:secret@127.0.0.1:1/none")
    source = SourceConfig(
        kind="sql", sql=SqlSource(url="${LOOPML_T_UNREACHABLE}", query="SELECT 1")
    )
    with pytest.raises(SourceError, match="unreachable") as info:
        read_batch(source, dvc_repo)
    assert info.value.transient and "secret" not in str(info.value)


def test_a_query_streams_from_a_server_side_cursor(
    dvc_repo: Path, pg_table: tuple[str, pd.DataFrame]
) -> None:
    """``iter_batch`` hands a query's rows out ``chunk_rows`` at a time, and collect writes them
    as they come: the snapshot reads back as the whole query, conformed at once."""
    from loopml.collect import collect_snapshot
    from loopml.config import DataConfig
    from loopml.schema import conform_batch
    from loopml.sources import iter_batch

    table, _ = pg_table
    query = f'SELECT * FROM "{table}" ORDER BY customer_id'
    source = {"kind": "sql", "sql": {"url": PG_URL, "query": query}}
    data = DataConfig.model_validate(
        {"source": source, "schema": SCHEMA_CFG.model_dump(), "chunk_rows": 600}
    )
    assert [len(c) for c in iter_batch(data.source, dvc_repo, 600)] == [600, 600, 600, 200]
    snap = collect_snapshot(data, dvc_repo, dvc_repo / "streamed", dvc_repo / "streamed.json")
    whole = conform_batch(read_batch(data.source, dvc_repo), data.table, data.clean)
    pd.testing.assert_frame_equal(pd.read_parquet(snap.path), whole)
    assert snap.rows == 2000 and snap.dvc_tracked
    empty = SourceConfig(
        kind="sql", sql=SqlSource(url=PG_URL, query=f'SELECT * FROM "{table}" WHERE false')
    )
    with pytest.raises(SourceError, match="empty"):
        list(iter_batch(empty, dvc_repo, 600))
