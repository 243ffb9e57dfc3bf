"""Data sources: one batch of raw rows from the bundled generator, a file or folder, a URL or
an SQL query (``data.source``, ``score.source``)."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Collection, Iterator
from pathlib import Path

import pandas as pd

from loopml.config import CsvOptions, SourceConfig
from loopml.exceptions import SourceError
from loopml.secrets import expand, redact, redact_url

log = logging.getLogger(__name__)


def describe_source(source: SourceConfig) -> str:
    """A one-line description, with any password masked."""
    if source.kind == "generator":
        g = source.generator
        return f"generator(n_rows={g.n_rows}, seed={g.seed}, start={g.start}, days={g.days})"
    if source.kind == "file":
        assert source.file is not None
        return f"file({source.file.path})"
    if source.kind == "url":
        assert source.url is not None
        return f"url({redact_url(source.url.url)})"
    assert source.sql is not None
    return f"sql({redact_url(source.sql.url)})"


def _head(data: str | Path | io.BytesIO, size: int = 2048) -> bytes:
    if isinstance(data, io.BytesIO):
        return data.getvalue()[:size]
    with open(data, "rb") as f:
        return f.read(size)


def sniff_not_csv(head: bytes) -> str | None:
    """What a body that should be CSV is instead (an HTML error page, JSON, a binary file)."""
    text = head.lstrip().lower()
    if text.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        return "an HTML or XML page, not CSV (an error or login page?)"
    if text.startswith((b"{", b"[")):
        return "JSON, not CSV"
    if head.startswith(b"PAR1"):
        return "a Parquet file: set format: parquet"
    if b"\x00" in head:
        return "a binary file, not CSV"
    return None


def _read_csv(
    data: str | Path | io.BytesIO, opts: CsvOptions, where: str, text: Collection[str] = ()
) -> pd.DataFrame:
    frames = list(_csv_chunks(data, opts, where, None, text))
    return frames[0] if frames else pd.DataFrame()


def _csv_chunks(
    data: str | Path | io.BytesIO,
    opts: CsvOptions,
    where: str,
    chunk_rows: int | None,
    text: Collection[str] = (),
) -> Iterator[pd.DataFrame]:
    """The rows of a CSV file, all at once (``chunk_rows`` None) or ``chunk_rows`` at a time.

    The columns in ``text`` (categorical ones) are read as text, not guessed: a code column
    then reads the same whatever else a chunk holds (``7``, not ``7.0`` beside a missing value,
    and not ``7`` in one chunk and ``7.0`` in the next)."""
    instead = sniff_not_csv(_head(data))
    if instead:
        raise SourceError(f"{where}: the content is {instead}")
    try:
        read = pd.read_csv(
            data,
            sep=opts.sep,
            header=0 if opts.header else None,
            names=opts.names,
            na_values=opts.na_values or None,
            skipinitialspace=opts.skipinitialspace,
            encoding=opts.encoding,
            low_memory=False,
            chunksize=chunk_rows,
            dtype=dict.fromkeys(text, str) or None,
        )
        if chunk_rows is None:
            yield read
        else:
            with read as chunks:
                yield from chunks
    except pd.errors.EmptyDataError:
        return
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.start + 1]
        raise SourceError(
            f"{where}: not {opts.encoding} text (found byte {bad!r}); "
            "set the source's csv.encoding, e.g. encoding: latin-1"
        ) from exc
    except (pd.errors.ParserError, ValueError) as exc:
        raise SourceError(f"{where}: not readable as CSV ({exc})") from exc


TYPED = "loopml.typed"
"""Frame attribute: the values carry their types (Parquet); text in a numeric column is an error,
not something to parse."""


def _read_parquet(data: str | Path | io.BytesIO, where: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(data)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise SourceError(f"{where}: not readable as Parquet ({exc})") from exc


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The row groups of a Parquet file, ``chunk_rows`` rows at a time (pyarrow)."""
    import pyarrow.parquet as pq

    try:
        reader = pq.ParquetFile(path)
        for batch in reader.iter_batches(batch_size=chunk_rows):
            yield batch.to_pandas()
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise SourceError(f"{path}: not readable as Parquet ({exc})") from exc


def _format_of(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    suffixes = "".join(path.suffixes).lower()
    if ".parquet" in suffixes or suffixes.endswith(".pq"):
        return "parquet"
    if ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes:
        return "csv"
    raise SourceError(f"{path}: cannot tell the format from the name; set data.source.file.format")


def _files(path: Path, pattern: str) -> list[Path]:
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder (data.source.file.path)")
    files = sorted(p for p in path.glob(pattern) if p.is_file()) if path.is_dir() else [path]
    if not files:
        raise SourceError(f"{path}: no file matches pattern '{pattern}'")
    return files


def read_files(
    path: Path, pattern: str, fmt: str, csv: CsvOptions, text: Collection[str] = ()
) -> pd.DataFrame:
    """One file, or every file of a folder that matches ``pattern``, as one frame (``text``:
    CSV columns read as text)."""
    files = _files(path, pattern)
    frames = []
    for f in files:
        kind = _format_of(f, fmt)
        frames.append(
            _read_csv(f, csv, str(f), text) if kind == "csv" else _read_parquet(f, str(f))
        )
    frames = [f for f in frames if len(f.columns)]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    out.attrs[TYPED] = all(_format_of(f, fmt) == "parquet" for f in files)
    return out


def read_url(
    url: str, fmt: str, csv: CsvOptions, timeout_s: float, text: Collection[str] = ()
) -> pd.DataFrame:
    import requests

    where = redact_url(url)
    try:
        resp = requests.get(url, timeout=timeout_s)
    except requests.RequestException as exc:
        raise SourceError(
            f"{where}: unreachable ({exc.__class__.__name__})", transient=True
        ) from exc
    if resp.status_code >= 400:
        raise SourceError(f"{where}: HTTP {resp.status_code}", transient=resp.status_code >= 500)
    buf = io.BytesIO(resp.content)
    if fmt == "csv":
        return _read_csv(buf, csv, where, text)
    frame = _read_parquet(buf, where)
    frame.attrs[TYPED] = True
    return frame


def read_sql(url: str, query: str) -> pd.DataFrame:
    frames = list(_sql_chunks(url, query, None))
    return frames[0] if frames else pd.DataFrame()


def _sql_chunks(url: str, query: str, chunk_rows: int | None) -> Iterator[pd.DataFrame]:
    """The rows of a query, all at once (``chunk_rows`` None) or ``chunk_rows`` at a time from
    a server-side cursor (``stream_results``: the driver does not fetch every row first)."""
    import sqlalchemy as sa

    where = redact_url(url)  # the reference as written, or the URL with its password masked
    try:
        engine = sa.create_engine(expand(url, "data.source.sql.url"))
    except Exception as exc:
        raise SourceError(f"{where}: not a usable SQLAlchemy URL ({redact(str(exc))})") from None
    try:
        with engine.connect() as conn:
            if chunk_rows is None:
                yield pd.read_sql_query(sa.text(query), conn)
                return
            streamed = conn.execution_options(stream_results=True, max_row_buffer=chunk_rows)
            yield from pd.read_sql_query(sa.text(query), streamed, chunksize=chunk_rows)
    except sa.exc.OperationalError as exc:
        raise SourceError(
            f"{where}: unreachable ({redact(str(exc.orig))})", transient=True
        ) from None
    except sa.exc.SQLAlchemyError as exc:
        raise SourceError(f"{where}: query failed ({redact(str(exc))})") from None
    finally:
        engine.dispose()


def read_batch(source: SourceConfig, root: Path, text: Collection[str] = ()) -> pd.DataFrame:
    """One batch from ``source``; relative file paths resolve against ``root``; ``text``: CSV
    columns read as text (the categorical ones).

    Raises :class:`SourceError` for a missing or unreadable source or an empty batch
    (``transient`` where a retry may help).
    """
    started = time.perf_counter()
    if source.kind == "generator":
        from loopml.datagen import generate_churn

        g = source.generator
        frame = generate_churn(g.n_rows, g.seed, g.start, g.days, g.id_start, g.drift)
    elif source.kind == "file":
        assert source.file is not None
        f = source.file
        frame = read_files(
            f.path if f.path.is_absolute() else root / f.path, f.pattern, f.format, f.csv, text
        )
    elif source.kind == "url":
        assert source.url is not None
        u = source.url
        frame = read_url(u.url, u.format, u.csv, u.timeout_s, text)
    else:
        assert source.sql is not None
        frame = read_sql(source.sql.url, source.sql.query)
    if frame.empty:
        raise SourceError(f"{describe_source(source)}: the batch is empty (0 rows)")
    log.info(
        "read %s rows x %s columns from %s in %.2fs",
        f"{len(frame):,}",
        frame.shape[1],
        describe_source(source),
        time.perf_counter() - started,
    )
    return frame


def iter_batch(
    source: SourceConfig, root: Path, chunk_rows: int, text: Collection[str] = ()
) -> Iterator[pd.DataFrame]:
    """The batch of :func:`read_batch`, at most ``chunk_rows`` rows at a time.

    Files are streamed (Parquet row groups through pyarrow, CSV through pandas' chunked
    reader), and so are queries (a server-side cursor): only one chunk is in memory. The
    generator and URLs are read whole, then handed out in slices. A chunk carries
    :data:`TYPED` where :func:`read_batch`'s frame would (every file Parquet). Raises
    :class:`SourceError` as :func:`read_batch` does, an empty batch included.
    """
    rows = 0
    for chunk in _chunks(source, root, chunk_rows, text):
        if len(chunk):
            rows += len(chunk)
            yield chunk
    if not rows:
        raise SourceError(f"{describe_source(source)}: the batch is empty (0 rows)")


def _chunks(
    source: SourceConfig, root: Path, chunk_rows: int, text: Collection[str]
) -> Iterator[pd.DataFrame]:
    if source.kind == "sql":
        assert source.sql is not None
        yield from _sql_chunks(source.sql.url, source.sql.query, chunk_rows)
        return
    if source.kind != "file":
        frame = read_batch(source, root, text)
        for start in range(0, len(frame), chunk_rows):
            chunk = frame.iloc[start : start + chunk_rows].reset_index(drop=True)
            chunk.attrs = dict(frame.attrs)
            yield chunk
        return
    assert source.file is not None
    f = source.file
    files = _files(f.path if f.path.is_absolute() else root / f.path, f.pattern)
    typed = all(_format_of(path, f.format) == "parquet" for path in files)
    for path in files:
        if _format_of(path, f.format) == "parquet":
            chunks = _parquet_chunks(path, chunk_rows)
        else:
            chunks = _csv_chunks(path, f.csv, str(path), chunk_rows, text)
        for chunk in chunks:
            chunk.attrs[TYPED] = typed
            yield chunk
