"""Reading a sample of unknown data: the file format, CSV dialect (delimiter, header, encoding,
spaces after delimiters), the tokens that mean "missing", and the ``data.source`` that reads it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from loopml.exceptions import SourceError
from loopml.secrets import expand, has_credentials, is_reference, redact_url

SOURCE_URL_REFERENCE = "${LOOPML_SOURCE_URL}"

MISSING_TOKENS = ("?", "NA", "N/A", "n/a", "na", "NaN", "nan", "null", "NULL", "None", "-", "")
SAMPLE_BYTES = 1 << 20


@dataclass(frozen=True)
class Sample:
    """Rows of the data as a source would read them, and how that source is declared."""

    frame: pd.DataFrame
    source: dict[str, Any]
    """The ``data.source`` section that reads all of it."""
    notes: list[str] = field(default_factory=list)
    """What was detected, for the comments of the draft."""


def _looks_numeric(value: str) -> bool:
    return bool(re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", value))


def _dialect(text: str) -> tuple[str, bool, bool]:
    """(delimiter, has a header row, values start with a space after the delimiter)."""
    lines = [line for line in text.splitlines()[:200] if line.strip()]
    if not lines:
        raise SourceError("the file is empty")
    try:
        sep = csv.Sniffer().sniff("\n".join(lines[:50]), delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    rows = list(csv.reader(lines[:50], delimiter=sep))
    first, rest = rows[0], rows[1:]
    spaced = sum(v.startswith(" ") for row in rest for v in row[1:]) > 0.5 * sum(
        len(row) - 1 for row in rest or [[]]
    )
    names = [v.strip() for v in first]
    header = bool(rest) and all(n and not _looks_numeric(n) for n in names)
    header = header and len(set(names)) == len(names)
    if header and rest:  # a header differs from the rows below it: some column turns numeric
        below = [[v.strip() for v in row] for row in rest]
        numeric_below = any(
            all(_looks_numeric(row[i]) for row in below if i < len(row) and row[i])
            for i in range(len(names))
        )
        header = numeric_below or len({tuple(r) for r in below}) == len(below)
    return sep, header, spaced


def _missing_tokens(frame: pd.DataFrame) -> list[str]:
    """Tokens that stand for missing values: they fill holes in otherwise numeric columns, or
    are a symbol (``?``, ``-``) used as a value."""
    found = []
    for token in MISSING_TOKENS:
        if not token:
            continue
        for col in frame.columns:
            values = frame[col].dropna().astype(str).str.strip()
            hits = values == token
            if not hits.any():
                continue
            others = values[~hits]
            numeric = len(others) and others.map(_looks_numeric).mean() > 0.98
            if numeric or token in ("?", "-", "NA", "N/A", "NULL", "null"):
                found.append(token)
                break
    return found


def _read_csv_sample(data: bytes, where: str, rows: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    for encoding in ("utf-8", "latin-1"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    sep, header, spaced = _dialect(text)
    options: dict[str, Any] = {"sep": sep, "header": header, "skipinitialspace": spaced}
    if encoding != "utf-8":
        options["encoding"] = encoding
    raw = pd.read_csv(
        io.StringIO(text), sep=sep, header=0 if header else None, dtype=str,
        keep_default_na=False, skipinitialspace=spaced, nrows=rows,
    )  # fmt: skip
    if not header:
        raw.columns = [f"column_{i + 1}" for i in range(raw.shape[1])]
        options["names"] = list(raw.columns)
    tokens = _missing_tokens(raw)
    if tokens:
        options["na_values"] = tokens
    frame = raw.replace({t: None for t in [*tokens, ""]})
    return frame, options


def _files(path: Path) -> tuple[list[Path], str]:
    """The data files of a folder (the commonest extension) and the glob that matches them."""
    files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    data = [p for p in files if p.suffix.lower() in (".csv", ".tsv", ".txt", ".parquet", ".pq")]
    if not data:
        raise SourceError(f"{path}: no CSV or Parquet file in the folder")
    suffix = max(
        {p.suffix.lower() for p in data}, key=lambda s: sum(p.suffix.lower() == s for p in data)
    )
    chosen = [p for p in data if p.suffix.lower() == suffix]
    return chosen, f"*{suffix}"


def sample_files(path: Path, rows: int) -> Sample:
    """A sample of a file, or of every data file of a folder (rows from each)."""
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    files, pattern = _files(path) if path.is_dir() else ([path], None)
    per_file = max(1000, rows // len(files))
    parquet = files[0].suffix.lower() in (".parquet", ".pq")
    frames, options = [], {}
    for f in files:
        if parquet:
            frames.append(pd.read_parquet(f).head(per_file))
            continue
        with f.open("rb") as fh:
            frame, options = _read_csv_sample(fh.read(SAMPLE_BYTES * 8), str(f), per_file)
        frames.append(frame)
    source: dict[str, Any] = {"kind": "file", "file": {"path": str(path)}}
    if pattern:
        source["file"]["pattern"] = pattern
    source["file"]["format"] = "parquet" if parquet else "csv"
    if not parquet and options:
        source["file"]["csv"] = options
    notes = [f"read {sum(len(f) for f in frames):,} sample rows from {len(files)} file(s)"]
    return Sample(frame=pd.concat(frames, ignore_index=True), source=source, notes=notes)


def sample_url(url: str, rows: int) -> Sample:
    import requests

    try:
        resp = requests.get(url, timeout=60)
        resp.raise_for_status()
    except requests.RequestException as exc:
        raise SourceError(f"{redact_url(url)}: cannot download ({type(exc).__name__})") from exc
    parquet = url.lower().split("?")[0].endswith((".parquet", ".pq"))
    if parquet:
        frame = pd.read_parquet(io.BytesIO(resp.content)).head(rows)
        return Sample(frame, {"kind": "url", "url": {"url": url, "format": "parquet"}})
    frame, options = _read_csv_sample(resp.content, url, rows)
    return Sample(frame, {"kind": "url", "url": {"url": url, "format": "csv", "csv": options}})


def sample_sql(url: str, table: str | None, query: str | None, rows: int) -> Sample:
    import sqlalchemy as sa

    if not (table or query):
        raise SourceError("an SQL source needs --table or --query")
    statement = query or f'SELECT * FROM "{table}"'
    engine = sa.create_engine(expand(url, "--from"))
    try:
        with engine.connect() as conn:
            frame = pd.read_sql_query(
                sa.text(f"SELECT * FROM ({statement}) AS s LIMIT {rows}"), conn
            )
    except sa.exc.SQLAlchemyError as exc:
        raise SourceError(f"{redact_url(url)}: {type(exc).__name__}: {exc.orig}") from exc
    finally:
        engine.dispose()
    # A password never goes into the draft: it refers to the variable that holds the URL.
    written = url if is_reference(url) or not has_credentials(url) else SOURCE_URL_REFERENCE
    return Sample(frame, {"kind": "sql", "sql": {"url": written, "query": statement}})


def read_sample(
    location: str, rows: int = 20_000, table: str | None = None, query: str | None = None
) -> Sample:
    """A sample of the data at ``location``: a file or folder path, an http(s) URL, or an
    SQLAlchemy URL with ``table`` or ``query``."""
    if location.startswith(("http://", "https://")):
        return sample_url(location, rows)
    if re.match(r"^[a-z][a-z0-9+]*://", location):
        return sample_sql(location, table, query, rows)
    return sample_files(Path(location).expanduser().resolve(), rows)
