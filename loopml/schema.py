"""Column kinds: turning raw values (CSV text, SQL rows, JSON requests) into declared kinds.

Shared by ``collect`` and by the served model, so training and serving read rows the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import pandas as pd

from loopml.config import CleanConfig, SchemaConfig
from loopml.derive import derive_columns
from loopml.exceptions import SourceError
from loopml.sources import TYPED

log = logging.getLogger(__name__)

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_TEXT = {"string", "mixed", "mixed-integer"}


def _bool_or_object(mapped: pd.Series) -> pd.Series:
    """numpy bool without nulls; object (True/False/None) with them: GX checks both reliably."""
    if mapped.isna().any():
        return mapped.astype(object).where(mapped.notna(), None)
    return mapped.astype(bool)


def _to_bool(col: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(col):
        return _bool_or_object(col)
    if pd.api.types.is_numeric_dtype(col):
        vals = set(pd.unique(col.dropna()))
        return _bool_or_object(col.map({1: True, 0: False})) if vals <= {0, 1} else col
    lowered = col.astype("string").str.strip().str.lower()
    known = lowered.isin(_TRUE | _FALSE) | lowered.isna()
    if not known.all():
        return col.astype("string").astype(object)
    return _bool_or_object(lowered.map(lambda v: v in _TRUE if isinstance(v, str) else None))


def _to_numeric(col: pd.Series) -> pd.Series:
    if pd.api.types.is_bool_dtype(col):
        return col.astype("float64")
    if pd.api.types.is_numeric_dtype(col):
        return col
    try:
        return pd.to_numeric(col)
    except (ValueError, TypeError):
        pass
    try:  # Python's float() reads what pandas refuses, e.g. '1e400' (inf: the finite check)
        return col.map(lambda v: v if pd.isna(v) else float(v)).astype("float64")
    except (ValueError, TypeError):
        # Leave it as text: the GX type expectation names the column and fails the batch.
        return col.astype("string").astype(object)


def _to_datetime(col: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(col):
        return col.dt.tz_localize(None) if getattr(col.dt, "tz", None) is not None else col
    try:
        out = pd.to_datetime(col, format="mixed")
    except (ValueError, TypeError):
        return col.astype("string").astype(object)
    return out.dt.tz_localize(None) if getattr(out.dt, "tz", None) is not None else out


def _to_categorical(col: pd.Series) -> pd.Series:
    if pd.api.types.is_object_dtype(col) and pd.api.types.infer_dtype(col) == "string":
        return col
    out = col.astype("string").astype(object)
    return out.where(col.notna(), None)


_CONVERTERS = {
    "numeric": _to_numeric,
    "integer": _to_numeric,
    "boolean": _to_bool,
    "datetime": _to_datetime,
    "categorical": _to_categorical,
}


def _text_in_typed(col: pd.Series, kind: str) -> bool:
    """Text stored in a typed file (Parquet) where the kind needs numbers, dates or booleans."""
    return kind != "categorical" and pd.api.types.infer_dtype(col, skipna=True) == "string"


def conform_frame(
    frame: pd.DataFrame,
    columns: Mapping[str, str],
    strip_whitespace: bool = True,
    rstrip: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Keep the declared ``columns`` and convert each to its kind where its values allow it.

    In a typed frame (Parquet: ``attrs[TYPED]``), a column stored as text is left as text where
    its kind is not categorical: the type check then names it (no silent conversion).
    """
    typed = bool(frame.attrs.get(TYPED))
    out = frame.copy(deep=False)
    out.attrs = {}  # pyarrow stores attrs in the Parquet file: they would change its md5
    if strip_whitespace:
        for name in out.columns[[pd.api.types.is_object_dtype(t) for t in out.dtypes]]:
            col = out[name]
            stripped = col.str.strip() if pd.api.types.infer_dtype(col) in _TEXT else None
            if stripped is not None:
                out[name] = stripped.where(stripped.notna(), col)
    for name, chars in (rstrip or {}).items():
        if name in out.columns:
            out[name] = out[name].where(out[name].isna(), out[name].astype(str).str.rstrip(chars))
    extra = [c for c in out.columns if c not in columns]
    if extra:
        log.warning(
            "dropping %d column(s) not declared in data.schema.columns: %s", len(extra), extra
        )
        out = out.drop(columns=extra)
    for name, kind in columns.items():
        if name in out.columns and not (typed and _text_in_typed(out[name], kind)):
            out[name] = _CONVERTERS[kind](out[name])
    return out


def with_derived(frame: pd.DataFrame, table: SchemaConfig) -> pd.DataFrame:
    """``frame`` with the derived columns of ``data.schema.derived`` added (where all the columns
    they read are present; a served row without them is refused earlier)."""
    if not table.derived:
        return frame
    return derive_columns(frame, table.expressions(), table.derived_kinds)


_SEPARATORS = {";": "';'", "\t": "'\\t'", "|": "'|'"}


def missing_columns_message(found: list[str], declared: list[str]) -> str | None:
    """Why declared columns are missing, in words: expected versus found, a close match per
    missing column, and a likely delimiter when the rows were read as one column."""
    import difflib

    missing = [c for c in declared if c not in found]
    if not missing:
        return None
    if len(found) == 1:
        sep = next((name for s, name in _SEPARATORS.items() if s in found[0]), None)
        if sep:
            return (
                f"the rows were read as one column ('{found[0][:40]}...'): the separator looks "
                f"like {sep}; set data.source.file.csv.sep: {sep}"
            )
    extra = [c for c in found if c not in declared]
    named = []
    for c in missing:
        match = difflib.get_close_matches(c, extra, n=1, cutoff=0.6)
        named.append(f"'{c}' (found '{match[0]}': renamed?)" if match else f"'{c}'")
    shown = ", ".join(named[:12]) + (f" and {len(named) - 12} more" if len(named) > 12 else "")
    return (
        f"{len(missing)} of {len(declared)} declared column(s) missing: {shown}; "
        f"the batch has {len(found)} column(s): {found[:10]}{' ...' if len(found) > 10 else ''}; "
        "fix the source or data.schema.columns"
    )


def conform_batch(frame: pd.DataFrame, table: SchemaConfig, clean: CleanConfig) -> pd.DataFrame:
    """A raw batch as a snapshot holds it: the declared columns in their kinds, then the derived
    columns. Raises :class:`SourceError` naming what is missing when declared columns are."""
    problem = missing_columns_message([str(c) for c in frame.columns], list(table.columns))
    if problem:
        raise SourceError(f"the batch does not match data.schema: {problem}")
    conformed = conform_frame(frame, table.columns, clean.strip_whitespace, clean.rstrip)
    return with_derived(conformed, table)
