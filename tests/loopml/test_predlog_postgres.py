"""The prediction log in PostgreSQL: several server workers and batch scoring write one log,
the monitor reads it, labels attach across workers; a bad database is a clear error.

Real parts: the local PostgreSQL (a database created for the test), the real server app on a
real MLflow registry, psycopg.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from loopml.config import SchemaConfig, ServeConfig, load_params
from loopml.datagen import SCHEMA
from loopml.exceptions import ConfigError, StorageError
from loopml.monitoring.data import current_from_log
from loopml.predlog import (
    LOG_URL_ENV,
    PredictionBatch,
    PredictionLog,
    log_target,
    read_prediction_log,
    utc_now,
)
from loopml.serving.app import create_app
from tests.conftest import small_params

PG_URL = os.environ.get("LOOPML_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.db,
    pytest.mark.skipif(not PG_URL, reason="LOOPML_TEST_POSTGRES_URL is not set"),
]


@pytest.fixture
def database() -> Iterator[str]:
    """A new, empty database; dropped afterwards."""
    import psycopg

    name = f"loopml_predlog_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_URL.rsplit("/", 1)[0]  # type: ignore[union-attr]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _rows(request_id: str, n: int) -> list[PredictionBatch]:
    """One request of ``n`` predictions."""
    features = {"tenure_months": list(range(n))}
    predictions = [i % 2 == 0 for i in range(n)]
    return [PredictionBatch(request_id, 0, utc_now(), "1", features, predictions, [0.5] * n)]


def test_two_writers_share_one_log_and_labels_attach_across_them(database: str) -> None:
    first, second = PredictionLog(database), PredictionLog(database)  # two server workers
    try:

        def write(log: PredictionLog, tag: str) -> None:
            for batch in range(20):
                log.append(_rows(f"{tag}-{batch}", 5))

        threads = [
            threading.Thread(target=write, args=(lg, t)) for lg, t in ((first, "a"), (second, "b"))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        first.flush()
        second.flush()
        # a label posted to one worker for a prediction the other one logged
        assert first.add_labels([("b-3", 1, json.dumps(True))]) == 1
        assert second.count() == 200
    finally:
        first.close()
        second.close()
    frame = read_prediction_log(database)
    assert len(frame) == 200 and frame[["request_id", "row"]].duplicated().sum() == 0
    labelled = frame[frame["label"].notna()]
    assert labelled[["request_id", "row"]].values.tolist() == [["b-3", 1]]
    assert sorted(frame["tenure_months"].unique()) == [0, 1, 2, 3, 4]


def test_a_label_for_an_unknown_prediction_is_refused(database: str) -> None:
    log = PredictionLog(database)
    try:
        log.append(_rows("known", 2))
        with pytest.raises(
            Exception, match=r"no logged prediction for request_id/row \[\('nope', 0\)\]"
        ):
            log.add_labels([("nope", 0, "true")])
    finally:
        log.close()
    assert read_prediction_log(database)["label"].isna().all()


def test_the_server_logs_to_postgresql_and_the_monitor_reads_it(
    database: str, registry: dict[str, Any]
) -> None:
    cfg = ServeConfig(poll_seconds=60, token_env="LOOPML_TEST_UNSET_TOKEN")
    rows = registry["test_rows"].head(4)
    records = json.loads(
        rows.drop(columns=["churned", "customer_id"]).to_json(orient="records", date_format="iso")
    )
    workers = [
        create_app(registry["tracking"].client(), "churn-classifier", cfg, database)
        for _ in range(2)
    ]
    with TestClient(workers[0]) as one, TestClient(workers[1]) as two:
        asked = one.post("/predict", json=records[:2]).json()
        two.post("/predict", json=records[2:])
        # the other worker's writer is a background thread: wait until its rows are written
        deadline = time.time() + 30
        while time.time() < deadline and len(read_prediction_log(database)) < 2:
            time.sleep(0.1)
        labelled = two.post(  # the label reaches the other worker's prediction
            "/labels",
            json={"labels": [{"request_id": asked["request_id"], "row": 0, "label": True}]},
        )
        assert labelled.status_code == 200, labelled.text
    schema = SchemaConfig(
        columns=SCHEMA, target="churned", id_column="customer_id", time_column="event_time"
    )
    current = current_from_log(log_path=database, schema=schema, window_rows=100)
    assert len(current) == 4
    assert current["churned"].notna().sum() == 1
    assert set(current["_prediction"]) <= {True, False}


def test_the_url_comes_from_the_environment_first_and_is_never_literal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database: str
) -> None:
    raw = small_params(paths={"prediction_log_url": "${LOOPML_TEST_LOG_URL}"})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("LOOPML_TEST_LOG_URL", database)
    assert log_target(load_params(tmp_path / "params.yaml")) == database
    monkeypatch.setenv(LOG_URL_ENV, database + "_other")
    assert log_target(load_params(tmp_path / "params.yaml")) == database + "_other"
    monkeypatch.delenv(LOG_URL_ENV)
    raw["paths"]["prediction_log_url"] = "postgresql://u:hunter2@db/x"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as err:
        load_params(tmp_path / "params.yaml")
    assert "paths.prediction_log_url" in str(err.value) and "hunter2" not in str(err.value)


def test_an_unreachable_database_is_one_clear_error_without_the_password() -> None:
    with pytest.raises(StorageError) as err:
        PredictionLog("postgresql://loopml:hunter2@127.0.0.1:1/predictions")
    said = str(err.value)
    assert "prediction log postgresql://loopml:***@127.0.0.1:1/predictions" in said
    assert "cannot connect" in said and "hunter2" not in said
