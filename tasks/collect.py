"""collect: read a batch from the configured source, conform it to the schema, snapshot it.

Each accepted batch becomes an immutable, content-addressed Parquet snapshot
(``<paths.snapshots>/<md5>.parquet``), versioned with ``dvc add`` and pushed to the DVC remote.
The same data gives the same file and the same version; nothing half-written is ever left.
"""

from __future__ import annotations

import io
import logging
import os
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
from prefect import task

from loopml.config import CleanConfig, CsvOptions, SchemaConfig, SourceConfig, VersioningConfig
from loopml.datagen import generate_churn
from loopml.exceptions import SourceError, VersioningError
from loopml.io import write_json, write_parquet
from loopml.retry import retry_transient
from loopml.schema import conform_frame
from loopml.versioning import dvc_add, dvc_push, file_md5, find_repo_root, remove_quietly

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """An accepted batch on disk. ``version`` is its DVC hash (md5 of the Parquet file)."""

    version: str
    path: str
    rows: int
    columns: list[str]
    source: str
    dvc_tracked: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


# --------------------------------------------------------------------------- reading
def describe_source(source: SourceConfig) -> str:
    if source.kind == "generator":
        g = source.generator
        return f"generator(n_rows={g.n_rows}, seed={g.seed}, start={g.start}, days={g.days})"
    if source.kind == "file":
        assert source.file is not None
        return f"file({source.file.path})"
    if source.kind == "url":
        assert source.url is not None
        return f"url({source.url.url})"
    assert source.sql is not None
    return f"sql({_redact(source.sql.url)})"


def _redact(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def _read_csv(data: str | Path | io.BytesIO, opts: CsvOptions, where: str) -> pd.DataFrame:
    try:
        return pd.read_csv(
            data,
            sep=opts.sep,
            header=0 if opts.header else None,
            names=opts.names,
            na_values=opts.na_values or None,
            skipinitialspace=opts.skipinitialspace,
            encoding=opts.encoding,
            low_memory=False,
        )
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except (UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise SourceError(f"{where}: not readable as CSV ({exc})") from exc


def _read_parquet(data: str | Path | io.BytesIO, where: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(data)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ...
        raise SourceError(f"{where}: not readable as Parquet ({exc})") from exc


def _format_of(path: Path, declared: str) -> str:
    if declared != "auto":
        return declared
    suffixes = "".join(path.suffixes).lower()
    if ".parquet" in suffixes or suffixes.endswith(".pq"):
        return "parquet"
    if ".csv" in suffixes or ".tsv" in suffixes or ".txt" in suffixes:
        return "csv"
    raise SourceError(f"{path}: cannot tell the format from the name; set data.source.file.format")


def read_file_source(path: Path, pattern: str, fmt: str, csv: CsvOptions) -> pd.DataFrame:
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder (data.source.file.path)")
    files = sorted(p for p in path.glob(pattern) if p.is_file()) if path.is_dir() else [path]
    if not files:
        raise SourceError(f"{path}: no file matches pattern '{pattern}'")
    frames = []
    for f in files:
        kind = _format_of(f, fmt)
        frames.append(_read_csv(f, csv, str(f)) if kind == "csv" else _read_parquet(f, str(f)))
    frames = [f for f in frames if len(f.columns)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def read_url_source(url: str, fmt: str, csv: CsvOptions, timeout_s: float) -> pd.DataFrame:
    import requests

    try:
        resp = requests.get(url, timeout=timeout_s)
    except requests.RequestException as exc:
        raise SourceError(
            f"{url}: unreachable ({exc.__class__.__name__}: {exc})", transient=True
        ) from exc
    if resp.status_code >= 400:
        raise SourceError(f"{url}: HTTP {resp.status_code}", transient=resp.status_code >= 500)
    buf = io.BytesIO(resp.content)
    return _read_csv(buf, csv, url) if fmt == "csv" else _read_parquet(buf, url)


def read_sql_source(url: str, query: str) -> pd.DataFrame:
    import sqlalchemy as sa

    url = os.path.expandvars(url)
    try:
        engine = sa.create_engine(url)
    except Exception as exc:
        raise SourceError(f"{_redact(url)}: not a usable SQLAlchemy URL ({exc})") from exc
    try:
        with engine.connect() as conn:
            return pd.read_sql_query(sa.text(query), conn)
    except sa.exc.OperationalError as exc:
        raise SourceError(f"{_redact(url)}: unreachable ({exc.orig})", transient=True) from exc
    except sa.exc.SQLAlchemyError as exc:
        raise SourceError(f"{_redact(url)}: query failed ({exc})") from exc
    finally:
        engine.dispose()


@task(name="read-source", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_transient)
def read_source(source: SourceConfig, root: Path) -> pd.DataFrame:
    """Read one batch from the configured source. Fails on a missing source or an empty batch."""
    started = time.perf_counter()
    if source.kind == "generator":
        g = source.generator
        frame = generate_churn(g.n_rows, g.seed, g.start, g.days, g.id_start, g.drift)
    elif source.kind == "file":
        assert source.file is not None
        p = source.file.path if source.file.path.is_absolute() else root / source.file.path
        frame = read_file_source(p, source.file.pattern, source.file.format, source.file.csv)
    elif source.kind == "url":
        assert source.url is not None
        u = source.url
        frame = read_url_source(u.url, u.format, u.csv, u.timeout_s)
    else:
        assert source.sql is not None
        frame = read_sql_source(source.sql.url, source.sql.query)
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


# --------------------------------------------------------------------------- conforming
@task(name="conform")
def conform(frame: pd.DataFrame, schema: SchemaConfig, clean: CleanConfig) -> pd.DataFrame:
    """Keep the declared columns and give them their declared kinds where the values allow it.

    Values that do not fit are kept as text, so validation reports the column instead of
    silently turning them into nulls. The input frame is not modified.
    """
    return conform_frame(frame, schema.columns, clean.strip_whitespace, clean.rstrip)


# --------------------------------------------------------------------------- snapshotting
@task(name="snapshot", retries=2, retry_delay_seconds=2, retry_condition_fn=retry_transient)
def write_snapshot(
    frame: pd.DataFrame,
    snapshots_dir: Path,
    current_pointer: Path,
    source: str,
    versioning: VersioningConfig,
) -> Snapshot:
    """Write ``frame`` as an immutable Parquet snapshot, version it with DVC, point to it.

    Returns the :class:`Snapshot` whose ``version`` is the DVC hash. On any failure the new
    snapshot and its ``.dvc`` file are removed; an earlier identical snapshot is left alone.
    """
    if frame.empty:
        raise SourceError(f"{source}: refusing to snapshot an empty batch")
    snapshots_dir.mkdir(parents=True, exist_ok=True)
    staging = snapshots_dir / f".staging-{os.getpid()}-{time.time_ns()}.parquet"
    write_parquet(staging, frame)
    try:
        version = file_md5(staging)
        final = snapshots_dir / f"{version}.parquet"
        existed = final.exists() and file_md5(final) == version
        if existed:
            staging.unlink()
        else:
            os.replace(staging, final)
    finally:
        remove_quietly(staging)

    tracked = False
    if versioning.enabled:
        root = find_repo_root(snapshots_dir.resolve())
        if root is None:
            if not existed:
                remove_quietly(final)
            raise VersioningError(
                f"{snapshots_dir} is not inside a DVC repository; run `loopml init` "
                "or set data.versioning.enabled: false"
            )
        dvc_file = final.with_name(final.name + ".dvc")
        had_dvc_file = dvc_file.exists()
        try:
            dvc_version = dvc_add(final, root)
            if dvc_version != version:
                raise VersioningError(f"DVC recorded {dvc_version} for {final}, expected {version}")
            if versioning.push:
                dvc_push(final, root, versioning.remote)
        except Exception:
            if not existed:
                remove_quietly(final)
            if not had_dvc_file:
                remove_quietly(dvc_file)
            raise
        tracked = True

    root_dir = current_pointer.resolve().parent
    try:
        rel = os.path.relpath(final.resolve(), root_dir)
    except ValueError:
        rel = str(final.resolve())
    snap = Snapshot(
        version=version,
        path=str(final),
        rows=len(frame),
        columns=list(frame.columns),
        source=source,
        dvc_tracked=tracked,
    )
    write_json(current_pointer, {**snap.to_dict(), "path": rel})
    log.info(
        "snapshot %s (%s rows)%s%s",
        final.name,
        f"{len(frame):,}",
        "" if existed else " written",
        ", versioned with DVC" if tracked else "",
    )
    return snap


def load_snapshot_pointer(current_pointer: Path) -> Snapshot:
    """Read the pointer written by :func:`write_snapshot` (used by the DVC stage commands)."""
    from loopml.io import read_json

    if not current_pointer.is_file():
        raise SourceError(f"{current_pointer}: no collected snapshot yet; run `loopml collect`")
    meta = read_json(current_pointer)
    path = Path(meta["path"])
    if not path.is_absolute():
        path = (current_pointer.resolve().parent / path).resolve()
    return Snapshot(**{**meta, "path": str(path)})


def read_snapshot(snapshot: Snapshot) -> pd.DataFrame:
    path = Path(snapshot.path)
    if not path.is_file():
        raise SourceError(
            f"{path}: snapshot {snapshot.version} is not in the workspace (dvc pull?)"
        )
    return pd.read_parquet(path)
