"""The prediction log in SQLite: requests logged a part at a time read back one row per
prediction, with labels; logs of the older layout (a database row per prediction) still read
and take labels."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from loopml.exceptions import InputError
from loopml.predlog import PredictionBatch, PredictionLog, read_prediction_log


def _batch(request_id: str, first: int, features: dict, probabilities: list | None = None):
    n = len(next(iter(features.values())))
    return PredictionBatch(
        request_id, first, f"2026-12-03T10:00:0{first % 10}", "3", features, [True] * n,
        probabilities,
    )  # fmt: skip


def test_parts_read_back_one_row_per_prediction_with_labels(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    log = PredictionLog(path)
    try:
        log.append([_batch("a", 0, {"age": [30, None], "plan": ["pro", "basic"]}, [0.9, 0.2])])
        # a model with another input column, and a scored batch logged in two parts
        log.append([_batch("b", 0, {"age": [41], "device": ["ios"]})])
        log.append([_batch("c", 0, {"age": [1, 2]}), _batch("c", 2, {"age": [3]})])
        assert log.count() == 6
        assert log.add_labels([("a", 1, json.dumps(False)), ("c", 2, json.dumps(True))]) == 2
        with pytest.raises(InputError, match=r"\('c', 3\)"):  # past the last part's rows
            log.add_labels([("c", 3, "true")])
    finally:
        log.close()
    frame = read_prediction_log(path).sort_values(["request_id", "row"])
    assert frame[["request_id", "row"]].values.tolist() == [
        ["a", 0], ["a", 1], ["b", 0], ["c", 0], ["c", 1], ["c", 2]
    ]  # fmt: skip
    assert frame["age"].tolist()[:3] == pytest.approx([30, float("nan"), 41], nan_ok=True)
    assert frame["plan"].tolist()[:3] == ["pro", "basic", None]  # absent where not an input
    assert frame["device"].tolist()[:3] == [None, None, "ios"]
    assert frame["prediction"].tolist() == [True] * 6
    assert frame["probability"].tolist()[:3] == pytest.approx([0.9, 0.2, float("nan")], nan_ok=True)
    assert frame["label"].tolist() == [None, "false", None, None, None, "true"]
    assert read_prediction_log(path, since="2026-12-03T10:00:02")["row"].tolist() == [2]


def test_a_log_of_the_older_layout_is_read_and_takes_labels(tmp_path: Path) -> None:
    """A log file written before parts: its rows read as before, beside new requests."""
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE predictions (request_id TEXT, row INTEGER, ts TEXT, model_version TEXT, "
        "features TEXT, prediction TEXT, probability REAL, PRIMARY KEY (request_id, row))"
    )
    conn.execute(
        "CREATE TABLE labels (request_id TEXT, row INTEGER, label TEXT, ts TEXT, "
        "PRIMARY KEY (request_id, row))"
    )
    old = ("old", 0, "2026-01-01T00:00:00", "1", json.dumps({"age": 50}), "false", 0.1)
    conn.execute("INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?)", old)
    conn.commit()
    conn.close()
    assert read_prediction_log(path)["age"].tolist() == [50]  # read before any new writer

    log = PredictionLog(path)
    try:
        log.append([_batch("new", 0, {"age": [20]})])
        assert log.count() == 2
        assert log.add_labels([("old", 0, "true")]) == 1
    finally:
        log.close()
    frame = read_prediction_log(path).sort_values("request_id", ignore_index=True)
    assert frame[["request_id", "age", "prediction", "label"]].values.tolist() == [
        ["new", 20, True, None],
        ["old", 50, False, "true"],
    ]


def _open_at(path: str, start: float) -> str:
    """One server worker opening the log at ``start`` (time.time()): '' or the error."""
    import time

    from loopml.predlog_stores import SqliteStore

    time.sleep(max(0.0, start - time.time()))
    try:
        SqliteStore(Path(path)).close()
    except Exception as exc:  # reported to the test, which names it
        return f"{type(exc).__name__}: {exc}"
    return ""


def test_server_workers_opening_a_new_log_together_all_succeed(tmp_path: Path) -> None:
    """Four processes open the same new SQLite log at the same instant, ten times over (a new
    project's `serve.workers: 4`); each switches it to WAL and creates its tables."""
    import multiprocessing
    import time

    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        pool.map(str, range(4))  # the workers are up before the clock starts
        for i in range(10):
            start = time.time() + 0.3
            path = str(tmp_path / f"log-{i}.sqlite")
            errors = pool.starmap(_open_at, [(path, start)] * 4)
            assert [e for e in errors if e] == [], f"trial {i}"
