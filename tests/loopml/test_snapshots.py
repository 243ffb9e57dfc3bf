"""Snapshots: immutable, content-addressed, DVC-versioned and pushed; nothing half-written."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest

from loopml.config import VersioningConfig
from loopml.exceptions import SourceError, VersioningError
from loopml.snapshots import current_snapshot, write_snapshot


def _snapshot(frame: pd.DataFrame, repo: Path, **versioning: object):
    return write_snapshot(
        frame=frame,
        snapshots_dir=repo / "data" / "snapshots",
        current_pointer=repo / "data" / "current.json",
        source="test",
        versioning=VersioningConfig(**versioning),
    )


def test_snapshot_is_versioned_pushed_and_content_addressed(
    dvc_repo: Path, churn_frame: pd.DataFrame
) -> None:
    snap = _snapshot(churn_frame, dvc_repo)
    path = Path(snap.path)
    assert path.name == f"{snap.version}.parquet" and path.is_file()
    dvc_file = path.with_name(path.name + ".dvc")
    assert f"md5: {snap.version}" in dvc_file.read_text()
    # pushed: the local folder remote holds the object under its md5
    remote = dvc_repo / ".dvcstore" / "files" / "md5" / snap.version[:2] / snap.version[2:]
    assert remote.is_file()
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=dvc_repo,
        capture_output=True,
        text=True,
    ).stdout
    assert f"{snap.version}.parquet.dvc" in status and f"{snap.version}.parquet\n" not in status
    pointer = current_snapshot(dvc_repo / "data" / "current.json")
    assert pointer.version == snap.version and Path(pointer.path) == path.resolve()

    again = _snapshot(churn_frame.copy(), dvc_repo)
    assert again.version == snap.version
    changed = _snapshot(churn_frame.assign(age=churn_frame["age"] + 1), dvc_repo)
    assert changed.version != snap.version
    files = sorted(p.name for p in (dvc_repo / "data" / "snapshots").iterdir())
    assert files == sorted(
        [
            f"{snap.version}.parquet",
            f"{snap.version}.parquet.dvc",
            f"{changed.version}.parquet",
            f"{changed.version}.parquet.dvc",
            ".gitignore",
        ]
    ) or files == sorted(
        [
            f"{snap.version}.parquet",
            f"{snap.version}.parquet.dvc",
            f"{changed.version}.parquet",
            f"{changed.version}.parquet.dvc",
        ]
    )


def test_no_partial_snapshot_outside_a_dvc_repo(tmp_path: Path, churn_frame: pd.DataFrame) -> None:
    with pytest.raises(VersioningError, match="not inside a DVC repository"):
        _snapshot(churn_frame, tmp_path)
    assert list((tmp_path / "data" / "snapshots").iterdir()) == []
    assert not (tmp_path / "data" / "current.json").exists()


def test_no_partial_snapshot_when_push_fails(dvc_repo: Path, churn_frame: pd.DataFrame) -> None:
    blocker = dvc_repo / "not-a-folder"
    blocker.write_text("a file where the remote folder should be")
    subprocess.run(
        ["dvc", "remote", "add", "broken", str(blocker / "store")],
        cwd=dvc_repo,
        check=True,
        capture_output=True,
    )
    with pytest.raises(VersioningError, match="push"):
        _snapshot(churn_frame, dvc_repo, remote="broken")
    leftovers = [
        p.name for p in (dvc_repo / "data" / "snapshots").iterdir() if p.name != ".gitignore"
    ]
    assert leftovers == []
    assert not (dvc_repo / "data" / "current.json").exists()


def test_unversioned_snapshots_when_disabled(tmp_path: Path, churn_frame: pd.DataFrame) -> None:
    snap = _snapshot(churn_frame, tmp_path, enabled=False)
    assert not snap.dvc_tracked and Path(snap.path).is_file()


def test_refuses_an_empty_batch(dvc_repo: Path) -> None:
    with pytest.raises(SourceError, match="empty"):
        _snapshot(pd.DataFrame({"a": []}), dvc_repo)
