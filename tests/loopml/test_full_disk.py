"""A full disk while writing a snapshot or the prediction log: nothing partial is left, the
error says which file and what to do, and the server answers 507 instead of failing.

Real parts: the disk is a real tmpfs of a few kilobytes, mounted for the test (ENOSPC from the
kernel, no patched ``write``). Mounting needs root (CAP_SYS_ADMIN); elsewhere the tests skip.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loopml.config import ServeConfig, VersioningConfig
from loopml.exceptions import StorageError
from loopml.predlog import PredictionBatch, PredictionLog, read_prediction_log, utc_now
from loopml.serving.app import create_app
from loopml.snapshots import write_snapshot

KB = 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[[int], Path]]:
    """Mount tmpfs file systems of a given size under ``tmp_path``; unmounted after the test."""
    mounts: list[Path] = []

    def _mount(size: int) -> Path:
        where = tmp_path / f"disk{len(mounts)}"
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
        mounts.append(where)
        return where

    try:
        yield _mount
    finally:
        for where in reversed(mounts):
            subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` to the last byte, then give back ``leave`` bytes (a real full disk).

    Written in chunks until the kernel says ENOSPC, because the server may write to the same
    disk meanwhile: a size measured beforehand can be stale by the time the filler is written.
    """
    filler = disk / "filler"
    try:
        with filler.open("wb", buffering=0) as out:
            while True:
                out.write(b"\0" * KB)
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
    if filler.exists():
        os.truncate(filler, max(filler.stat().st_size - leave, 0))
    return filler


def _frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(rows, 4)), columns=["a", "b", "c", "d"])


def test_a_snapshot_on_a_full_disk_leaves_nothing_and_says_where(
    small_disk: Callable[[int], Path], tmp_path: Path
) -> None:
    disk = small_disk(64 * KB)
    pointer = tmp_path / "current.json"
    pointer.write_text('{"version": "earlier"}')
    with pytest.raises(StorageError) as err:
        write_snapshot(
            frame=_frame(50_000),  # ~1.5 MB of Parquet for a 64 KB disk
            snapshots_dir=disk / "snapshots",
            current_pointer=pointer,
            source="test",
            versioning=VersioningConfig(enabled=False),
        )
    message = str(err.value)
    assert str(disk / "snapshots") in message
    assert "No space left on device" in message and "nothing was kept" in message
    assert list((disk / "snapshots").iterdir()) == []  # no snapshot, no staging, no temp file
    assert json.loads(pointer.read_text()) == {"version": "earlier"}  # current is unchanged


def test_a_streamed_collect_on_a_full_disk_leaves_nothing_and_says_where(
    small_disk: Callable[[int], Path], tmp_path: Path
) -> None:
    """The disk fills while collect appends chunks to its staging file."""
    from loopml.collect import collect_snapshot
    from loopml.config import DataConfig

    batch = tmp_path / "batch.parquet"
    _frame(60_000).to_parquet(batch, index=False)
    data = DataConfig.model_validate(
        {
            "source": {"kind": "file", "file": {"path": str(batch)}},
            "schema": {"columns": dict.fromkeys("abcd", "numeric"), "target": "d"},
            "chunk_rows": 5_000,
            "versioning": {"enabled": False},
        }
    )
    disk = small_disk(256 * KB)  # a few chunks fit (~40 KB each), not twelve
    pointer = tmp_path / "current.json"
    pointer.write_text('{"version": "earlier"}')
    with pytest.raises(StorageError) as err:
        collect_snapshot(data, tmp_path, disk / "snapshots", pointer)
    message = str(err.value)
    assert str(disk / "snapshots") in message
    assert "No space left on device" in message and "nothing was kept" in message
    assert list((disk / "snapshots").iterdir()) == []  # no snapshot, no staging file
    assert json.loads(pointer.read_text()) == {"version": "earlier"}


def test_a_full_disk_under_the_dvc_cache_leaves_no_partial_copy(
    small_disk: Callable[[int], Path],
) -> None:
    """The snapshot fits, DVC's copy of it into the cache does not: neither is kept, nor the
    temporary file DVC was copying into."""
    import io

    from tests.conftest import make_dvc_repo

    frame = _frame(50_000)
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    disk = small_disk(len(buffer.getvalue()) + 600 * KB)  # room for one copy, not two
    repo = make_dvc_repo(disk / "project")
    pointer = repo / "data" / "current.json"
    with pytest.raises(StorageError) as err:
        write_snapshot(
            frame=frame,
            snapshots_dir=repo / "data" / "snapshots",
            current_pointer=pointer,
            source="test",
            versioning=VersioningConfig(),
        )
    message = str(err.value)
    assert str(repo / ".dvc" / "cache") in message, message
    assert "No space left on device" in message and "nothing was kept" in message
    assert list((repo / "data" / "snapshots").iterdir()) == []
    assert not pointer.exists()
    assert [p for p in (repo / ".dvc" / "cache").rglob("*") if p.is_file()] == []


def _rows(request_id: str, n: int, width: int) -> list[PredictionBatch]:
    """One request of ``n`` predictions, each with a ``width``-character feature."""
    features = {"note": ["x" * width] * n}
    return [PredictionBatch(request_id, 0, utc_now(), "1", features, [0] * n, [0.5] * n)]


def test_the_prediction_log_on_a_full_disk_keeps_whole_batches_only(
    small_disk: Callable[[int], Path], caplog: pytest.LogCaptureFixture
) -> None:
    disk = small_disk(512 * KB)
    log = PredictionLog(disk / "predictions.sqlite")
    try:
        log.append(_rows("fits", 3, 10))
        assert log.count() == 3
        filler = _fill(disk, leave=8 * KB)
        with caplog.at_level(logging.ERROR, logger="loopml.predlog"):
            log.append(_rows("too-big", 200, 1000))  # ~200 KB: cannot fit
            assert log.count() == 3  # the whole batch or none of it
        said = caplog.text
        assert "200 prediction(s) not written" in said and "free disk space" in said
        with pytest.raises(StorageError, match="not written"):
            log.add_labels([("fits", i, json.dumps("y" * 5000)) for i in range(3)])
        filler.unlink()  # space again: the log goes on where it was
        log.append(_rows("later", 2, 10))
        assert log.count() == 5
    finally:
        log.close()


def _wait_until_logged(log: Path, rows: int) -> None:
    """The server logs predictions from a background thread: wait for them to reach the disk,
    or a disk filled before then loses the predictions, not the labels."""
    for _ in range(600):
        if log.is_file() and len(read_prediction_log(log)) >= rows:
            return
        time.sleep(0.1)
    raise AssertionError(f"{rows} predictions never reached {log}")


def test_the_server_answers_507_when_labels_cannot_be_stored(
    small_disk: Callable[[int], Path], registry: dict[str, Any]
) -> None:
    disk = small_disk(512 * KB)
    cfg = ServeConfig(poll_seconds=5, token_env="LOOPML_TEST_UNSET_TOKEN")
    app = create_app(registry["tracking"].client(), "churn-classifier", cfg, disk / "log.sqlite")
    rows = registry["test_rows"].head(3).drop(columns=["churned", "customer_id"])
    records = json.loads(rows.to_json(orient="records", date_format="iso"))
    with TestClient(app) as client:
        predicted = client.post("/predict", json=records)
        assert predicted.status_code == 200, predicted.text
        request_id = predicted.json()["request_id"]
        _wait_until_logged(disk / "log.sqlite", rows=3)  # written in the background
        _fill(disk, leave=4 * KB)
        labels = [{"request_id": request_id, "row": i, "label": "y" * 900} for i in range(3)]
        answer = client.post("/labels", json={"labels": labels})
        assert answer.status_code == 507, answer.text
        assert "not written" in answer.json()["detail"]
        assert client.get("/health").status_code == 200  # the server is still up
