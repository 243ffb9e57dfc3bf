"""collect: sources, conforming, immutable DVC-versioned snapshots, no partial writes."""

from __future__ import annotations

import functools
import http.server
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from loopml.config import (
    CleanConfig,
    CsvOptions,
    FileSource,
    SchemaConfig,
    SourceConfig,
    UrlSource,
    VersioningConfig,
)
from loopml.datagen import SCHEMA
from loopml.exceptions import SourceError, VersioningError
from tasks.collect import conform, load_snapshot_pointer, read_source, write_snapshot

CHURN_SCHEMA = SchemaConfig(
    columns=SCHEMA, target="churned", id_column="customer_id", time_column="event_time"
)


def _file_source(path: Path, **kw: object) -> SourceConfig:
    return SourceConfig(kind="file", file=FileSource(path=path, **kw))


# --------------------------------------------------------------------------- reading
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_reads_a_file(tmp_path: Path, churn_frame: pd.DataFrame, fmt: str) -> None:
    path = tmp_path / f"batch.{fmt}"
    churn_frame.to_csv(path, index=False) if fmt == "csv" else churn_frame.to_parquet(path)
    frame = read_source.fn(source=_file_source(path), root=tmp_path)
    assert frame.shape == churn_frame.shape


def test_reads_a_folder_of_files(tmp_path: Path, churn_frame: pd.DataFrame) -> None:
    folder = tmp_path / "batches"
    folder.mkdir()
    churn_frame.iloc[:1000].to_csv(folder / "a.csv", index=False)
    churn_frame.iloc[1000:].to_csv(folder / "b.csv", index=False)
    (folder / "notes.txt").write_text("ignored by the pattern")
    frame = read_source.fn(source=_file_source(folder, pattern="*.csv"), root=tmp_path)
    assert len(frame) == len(churn_frame)


def test_relative_paths_resolve_against_the_root(tmp_path: Path, churn_frame: pd.DataFrame) -> None:
    churn_frame.to_parquet(tmp_path / "x.parquet")
    assert len(read_source.fn(source=_file_source(Path("x.parquet")), root=tmp_path)) == len(
        churn_frame
    )


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "no such file"),
        ("", "empty"),
        ("a,b,c\n", "empty"),
        (b"\x00\x01garbage\xff\xfe", "not readable"),
    ],
)
def test_bad_files_fail_clearly(tmp_path: Path, content: str | bytes | None, match: str) -> None:
    path = tmp_path / "batch.csv"
    if isinstance(content, bytes):
        path = tmp_path / "batch.parquet"
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(SourceError, match=match) as info:
        read_source.fn(source=_file_source(path), root=tmp_path)
    assert str(path) in str(info.value) or "generator" not in str(info.value)
    assert info.value.transient is False


def test_empty_folder_match(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no file matches"):
        read_source.fn(source=_file_source(tmp_path, pattern="*.csv"), root=tmp_path)


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()


def test_reads_from_http(
    http_folder: tuple[str, Path], churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    base, folder = http_folder
    churn_frame.to_parquet(folder / "batch.parquet")
    source = SourceConfig(kind="url", url=UrlSource(url=f"{base}/batch.parquet", format="parquet"))
    assert len(read_source.fn(source=source, root=tmp_path)) == len(churn_frame)


def test_http_404_is_a_clear_permanent_error(http_folder: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = http_folder
    source = SourceConfig(kind="url", url=UrlSource(url=f"{base}/missing.csv"))
    with pytest.raises(SourceError, match="HTTP 404") as info:
        read_source.fn(source=source, root=tmp_path)
    assert info.value.transient is False


def test_unreachable_url_is_transient(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = SourceConfig(
        kind="url", url=UrlSource(url=f"http://127.0.0.1:{port}/x.csv", timeout_s=2)
    )
    with pytest.raises(SourceError, match="unreachable") as info:
        read_source.fn(source=source, root=tmp_path)
    assert info.value.transient is True
    assert f"127.0.0.1:{port}" in str(info.value)


# --------------------------------------------------------------------------- conforming
def test_conform_restores_declared_kinds_from_csv(
    tmp_path: Path, churn_frame: pd.DataFrame
) -> None:
    path = tmp_path / "b.csv"
    churn_frame.to_csv(path, index=False)
    raw = pd.read_csv(path)
    out = conform.fn(frame=raw, schema=CHURN_SCHEMA, clean=CleanConfig())
    pd.testing.assert_frame_equal(out, churn_frame, check_dtype=True)


def test_conform_keeps_wrong_types_as_text_and_does_not_mutate(churn_frame: pd.DataFrame) -> None:
    raw = churn_frame.astype({"age": object})
    raw.loc[5, "age"] = "thirty"
    before = raw.copy()
    out = conform.fn(frame=raw, schema=CHURN_SCHEMA, clean=CleanConfig())
    assert out["age"].dtype == object and out.loc[5, "age"] == "thirty"
    pd.testing.assert_frame_equal(raw, before)


def test_conform_drops_undeclared_and_strips(churn_frame: pd.DataFrame) -> None:
    raw = churn_frame.assign(extra=1, plan=" " + churn_frame["plan"] + ".")
    out = conform.fn(frame=raw, schema=CHURN_SCHEMA, clean=CleanConfig(rstrip={"plan": "."}))
    assert "extra" not in out.columns
    assert set(out["plan"]) <= {"basic", "standard", "premium", "enterprise"}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 0, 1], [True, False, True]),
        (["yes", "No", "TRUE"], [True, False, True]),
        (["true", None, "false"], [True, None, False]),
    ],
)
def test_conform_booleans(values: list, expected: list) -> None:
    schema = SchemaConfig(columns={"flag": "boolean", "y": "numeric"}, target="y")
    out = conform.fn(
        frame=pd.DataFrame({"flag": values, "y": 1.0}), schema=schema, clean=CleanConfig()
    )
    assert out["flag"].tolist() == expected


# --------------------------------------------------------------------------- snapshots
def _snapshot(frame: pd.DataFrame, repo: Path, **versioning: object):
    return write_snapshot.fn(
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
    pointer = load_snapshot_pointer(dvc_repo / "data" / "current.json")
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


def test_csv_options_are_used(tmp_path: Path) -> None:
    path = tmp_path / "adult_like.csv"
    path.write_text("39, State-gov, ?\n50, ?, >50K.\n")
    source = _file_source(
        path,
        csv=CsvOptions(
            header=False, names=["age", "work", "income"], na_values=["?"], skipinitialspace=True
        ),
    )
    frame = read_source.fn(source=source, root=tmp_path)
    assert frame["work"].isna().sum() == 1 and frame["income"].isna().sum() == 1
