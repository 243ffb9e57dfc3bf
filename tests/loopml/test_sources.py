"""Sources: files, folders, URLs; clear errors that say whether a retry may help."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from loopml.config import CsvOptions, FileSource, SourceConfig, UrlSource
from loopml.exceptions import SourceError
from loopml.sources import iter_batch, read_batch


def _file_source(path: Path, **kw: object) -> SourceConfig:
    return SourceConfig(kind="file", file=FileSource(path=path, **kw))


# --------------------------------------------------------------------------- reading
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_reads_a_file(tmp_path: Path, churn_frame: pd.DataFrame, fmt: str) -> None:
    path = tmp_path / f"batch.{fmt}"
    churn_frame.to_csv(path, index=False) if fmt == "csv" else churn_frame.to_parquet(path)
    frame = read_batch(_file_source(path), tmp_path)
    assert frame.shape == churn_frame.shape


def test_reads_a_folder_of_files(tmp_path: Path, churn_frame: pd.DataFrame) -> None:
    folder = tmp_path / "batches"
    folder.mkdir()
    churn_frame.iloc[:1000].to_csv(folder / "a.csv", index=False)
    churn_frame.iloc[1000:].to_csv(folder / "b.csv", index=False)
    (folder / "notes.txt").write_text("ignored by the pattern")
    frame = read_batch(_file_source(folder, pattern="*.csv"), tmp_path)
    assert len(frame) == len(churn_frame)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_file_is_streamed_in_chunks_that_make_up_the_batch(
    tmp_path: Path, churn_frame: pd.DataFrame, fmt: str
) -> None:
    folder = tmp_path / "batches"
    folder.mkdir()
    for name, part in (("a", churn_frame.iloc[:1500]), ("b", churn_frame.iloc[1500:])):
        path = folder / f"{name}.{fmt}"
        part.to_csv(path, index=False) if fmt == "csv" else part.to_parquet(path, index=False)
    source = _file_source(folder, pattern=f"*.{fmt}")
    chunks = list(iter_batch(source, tmp_path, chunk_rows=400))
    assert [len(c) for c in chunks] == [400, 400, 400, 300] * 2  # a chunk ends with its file
    whole = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(whole, read_batch(source, tmp_path), check_dtype=fmt == "parquet")


@pytest.mark.parametrize("content", ["", "a,b\n"])
def test_an_empty_file_streams_as_an_empty_batch_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(content)
    with pytest.raises(SourceError, match="the batch is empty"):
        list(iter_batch(_file_source(path), tmp_path, chunk_rows=10))


def test_relative_paths_resolve_against_the_root(tmp_path: Path, churn_frame: pd.DataFrame) -> None:
    churn_frame.to_parquet(tmp_path / "x.parquet")
    assert len(read_batch(_file_source(Path("x.parquet")), tmp_path)) == len(churn_frame)


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
        read_batch(_file_source(path), tmp_path)
    assert str(path) in str(info.value) or "generator" not in str(info.value)
    assert info.value.transient is False


def test_empty_folder_match(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no file matches"):
        read_batch(_file_source(tmp_path, pattern="*.csv"), tmp_path)


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
    assert len(read_batch(source, tmp_path)) == len(churn_frame)


def test_http_404_is_a_clear_permanent_error(http_folder: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = http_folder
    source = SourceConfig(kind="url", url=UrlSource(url=f"{base}/missing.csv"))
    with pytest.raises(SourceError, match="HTTP 404") as info:
        read_batch(source, tmp_path)
    assert info.value.transient is False


def test_unreachable_url_is_transient(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    source = SourceConfig(
        kind="url", url=UrlSource(url=f"http://127.0.0.1:{port}/x.csv", timeout_s=2)
    )
    with pytest.raises(SourceError, match="unreachable") as info:
        read_batch(source, tmp_path)
    assert info.value.transient is True
    assert f"127.0.0.1:{port}" in str(info.value)


def test_csv_options_are_used(tmp_path: Path) -> None:
    path = tmp_path / "adult_like.csv"
    path.write_text("39, State-gov, ?\n50, ?, >50K.\n")
    source = _file_source(
        path,
        csv=CsvOptions(
            header=False, names=["age", "work", "income"], na_values=["?"], skipinitialspace=True
        ),
    )
    frame = read_batch(source, tmp_path)
    assert frame["work"].isna().sum() == 1 and frame["income"].isna().sum() == 1


def test_a_drafted_url_source_reads_the_batch(
    http_folder: tuple[str, Path], churn_frame: pd.DataFrame, tmp_path: Path
) -> None:
    """`loopml init --from https://…`: the draft's source is the URL, and it reads back whole."""
    from loopml.drafting import draft_params

    base, folder = http_folder
    churn_frame.to_csv(folder / "batch.csv", index=False)
    d = draft_params(f"{base}/batch.csv", tmp_path / "p" / "params.yaml", target="churned")
    source = d.params.data.source
    assert source.kind == "url" and source.url.url == f"{base}/batch.csv"
    assert d.params.data.table.task == "classification"
    assert len(read_batch(source, tmp_path)) == len(churn_frame)
