"""Fixtures of the command tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import prefect_home

PG_URL = os.environ.get("LOOPML_TEST_POSTGRES_URL")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {**os.environ, "PREFECT_HOME": prefect_home(tmp_path / "prefect_home"), "COLUMNS": "200"}
    for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        out.pop(key, None)
    return out


@pytest.fixture
def pg_table() -> Iterator[Callable[[pd.DataFrame], str]]:
    """Write a frame to a new table of the test PostgreSQL database; dropped after the test."""
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL)  # type: ignore[arg-type]
    names: list[str] = []

    def _write(frame: pd.DataFrame) -> str:
        names.append(f"loopml_test_{uuid.uuid4().hex[:8]}")
        frame.to_sql(names[-1], engine, index=False)
        return names[-1]

    try:
        yield _write
    finally:
        with engine.begin() as conn:
            for name in names:
                conn.execute(sa.text(f'DROP TABLE IF EXISTS "{name}"'))
        engine.dispose()
