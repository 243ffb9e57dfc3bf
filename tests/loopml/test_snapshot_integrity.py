"""Snapshots are verified against their DVC md5 before use: a truncated, altered or deleted file
is restored from the DVC cache or remote; without a good copy the read fails with one clear
error naming the file and both hashes (never a pyarrow traceback). Training's stage flows and
monitoring both read through this check."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from loopml.config import VersioningConfig
from loopml.exceptions import IntegrityError
from loopml.snapshots import Snapshot, read_snapshot, write_snapshot


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "truncated": _truncate,
    "byte flipped": _flip_a_byte,
    "deleted": Path.unlink,
}


def _snapshot(frame: pd.DataFrame, repo: Path) -> Snapshot:
    return write_snapshot(
        frame=frame,
        snapshots_dir=repo / "data" / "snapshots",
        current_pointer=repo / "data" / "current.json",
        source="test",
        versioning=VersioningConfig(),
    )


@pytest.mark.parametrize("copy", ["cache", "remote"])
@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_snapshot_is_restored_from_dvc(
    dvc_repo: Path, churn_frame: pd.DataFrame, damage: str, copy: str
) -> None:
    snap = _snapshot(churn_frame, dvc_repo)
    if copy == "remote":  # a new machine: the only good copy is in the DVC remote
        shutil.rmtree(dvc_repo / ".dvc" / "cache")
        assert any(p.is_file() for p in (dvc_repo / ".dvcstore").rglob("*"))
    DAMAGE[damage](Path(snap.path))
    restored = read_snapshot(snap)
    pd.testing.assert_frame_equal(restored, pd.read_parquet(snap.path))
    assert len(restored) == len(churn_frame)


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_without_a_good_copy_the_error_names_the_file_and_both_hashes(
    dvc_repo: Path, churn_frame: pd.DataFrame, damage: str
) -> None:
    snap = _snapshot(churn_frame, dvc_repo)
    shutil.rmtree(dvc_repo / ".dvc" / "cache")  # no copy in the cache ...
    shutil.rmtree(dvc_repo / ".dvcstore")  # ... nor in the remote
    DAMAGE[damage](Path(snap.path))
    with pytest.raises(IntegrityError) as info:
        read_snapshot(snap)
    message = str(info.value)
    assert snap.path in message and f"expected md5 {snap.version}" in message
    assert "found " in message  # the damaged file's md5, or missing
    assert "loopml collect" in message
    assert "magic bytes" not in message
