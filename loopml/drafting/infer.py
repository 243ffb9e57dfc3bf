"""What a sample says about its columns: their kinds, the id and time columns, the task, the
target's variants, leak suspects, and a split; every guess with its reason."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from loopml.exceptions import ConfigError

_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_ID_NAME = re.compile(r"(^|[_\-\s])(id|uuid|key|instant|index)$", re.I)
_TIME_NAME = re.compile(r"(time|date|day|timestamp|ts|dt)", re.I)
MAX_CLASSES = 30


@dataclass
class Draft:
    """A drafted ``data.schema`` and the choices around it, with the reason for each."""

    columns: dict[str, str]
    target: str
    task: str
    id_column: str | None = None
    time_column: str | None = None
    drop: dict[str, str] = field(default_factory=dict)
    """Columns kept out of the features, and why."""
    notes: dict[str, str] = field(default_factory=dict)
    """A comment per column (what was seen)."""
    warnings: list[str] = field(default_factory=list)
    """Suspicions to check (post-outcome timestamps, ...)."""
    rstrip: dict[str, str] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    split: str = "stratified"
    rows: int = 0


def _text(values: pd.Series) -> pd.Series:
    return values.dropna().astype(str).str.strip()


def _is_datetime(values: pd.Series) -> bool:
    text = _text(values)
    if pd.api.types.is_datetime64_any_dtype(values):
        return True
    if text.empty or not text.str.contains(r"[-/:T]", regex=True).mean() > 0.95:
        return False
    parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() > 0.95)


def column_kind(values: pd.Series) -> tuple[str, str]:
    """(kind, what was seen) of one column of a sample."""
    present = values.dropna()
    if present.empty:
        return "categorical", "no values in the sample"
    if pd.api.types.is_bool_dtype(present):
        return "boolean", "true/false"
    text = _text(present)
    lowered = set(text.str.lower().unique())
    if (
        len(lowered) <= 2
        and lowered <= (_TRUE | _FALSE)
        and not lowered <= {"0", "1", "1.0", "0.0"}
    ):
        return "boolean", f"values {sorted(lowered)}"
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all():
        if (numbers == numbers.round()).all() and not text.str.contains(r"[.eE]").any():
            return "integer", f"{numbers.nunique():,} distinct integers"
        return "numeric", f"numbers from {numbers.min():g} to {numbers.max():g}"
    if _is_datetime(present):
        return "datetime", "date-times"
    share = numbers.notna().mean()
    seen = f"{text.nunique():,} distinct values"
    if share > 0.9:
        seen += f"; {1 - share:.1%} are not numbers, e.g. {text[numbers.isna()].iloc[0]!r}"
    return "categorical", seen


def _id_like(name: str, values: pd.Series, kind: str) -> bool:
    present = values.dropna()
    if present.empty or present.nunique() < 0.99 * len(present):
        return False
    if _ID_NAME.search(name):
        return True
    if kind == "integer":
        numbers = pd.to_numeric(present)
        return bool(numbers.is_monotonic_increasing and numbers.diff().dropna().eq(1).mean() > 0.9)
    return kind == "categorical"


def _task(values: pd.Series, kind: str) -> str:
    distinct = values.dropna().nunique()
    if kind in ("boolean", "categorical") or distinct <= 2:
        return "classification"
    if kind == "integer" and distinct <= MAX_CLASSES:
        return "classification"
    return "regression"


def _variants(values: pd.Series) -> str:
    """Characters to strip from the right of the target when its classes come in two spellings
    (``>50K`` and ``>50K.``)."""
    classes = set(_text(values).unique())
    for chars in (".", ";", ","):
        stripped = {c.rstrip(chars) for c in classes}
        if len(stripped) < len(classes) and all(c.rstrip(chars) for c in classes):
            return chars
    return ""


def resolve_target(columns: list[str], target: str | None) -> str:
    """The target by name, by 1-based position, or the last column."""
    if target is None or target == "last":
        return columns[-1]
    if target in columns:
        return target
    if target.isdigit() and 1 <= int(target) <= len(columns):
        return columns[int(target) - 1]
    raise ConfigError([f"--target: '{target}' is not a column (columns: {columns})"], "init")


def _leaks(frame: pd.DataFrame, draft: Draft) -> None:
    """Features that give the target away: near copies, or parts that add up to it."""
    target = frame[draft.target]
    numeric = [
        c for c, k in draft.columns.items()
        if k in ("numeric", "integer") and c not in (draft.target, *draft.drop)
    ]  # fmt: skip
    if draft.task == "regression":
        y = pd.to_numeric(target, errors="coerce")
        values = {c: pd.to_numeric(frame[c], errors="coerce") for c in numeric}
        for c, x in values.items():
            corr = y.corr(x)
            if corr == corr and abs(corr) >= 0.95:
                draft.drop[c] = f"leak suspect: correlation {corr:.3f} with the target"
        for i, a in enumerate(numeric):
            for b in numeric[i + 1 :]:
                if ((values[a] + values[b] - y).abs() < 1e-9).mean() > 0.99:
                    reason = f"leak suspect: {a} + {b} = {draft.target} in the sample"
                    draft.drop[a] = draft.drop[b] = reason
        return
    for c, kind in draft.columns.items():
        if c in (draft.target, *draft.drop) or kind == "datetime":
            continue
        groups = frame[[c, draft.target]].dropna().astype(str)
        if groups.empty or groups[c].nunique() > len(groups) / 2:
            continue
        purity = groups.groupby(c)[draft.target].agg(lambda s: s.value_counts().iloc[0]).sum()
        if purity / len(groups) > 0.995 and groups[c].nunique() > 1:
            draft.drop[c] = "leak suspect: it determines the target in the sample"


def _time_checks(frame: pd.DataFrame, draft: Draft) -> None:
    """The time column, and timestamps that come after it (possibly after the outcome)."""
    stamps = [c for c, k in draft.columns.items() if k == "datetime" and c != draft.target]
    if not stamps:
        return
    named = [c for c in stamps if _TIME_NAME.search(c)]
    draft.time_column = (named or stamps)[0]
    t0 = pd.to_datetime(frame[draft.time_column], errors="coerce", format="mixed")
    for c in stamps:
        if c == draft.time_column:
            continue
        t = pd.to_datetime(frame[c], errors="coerce", format="mixed")
        later = (t > t0)[t.notna() & t0.notna()]
        if len(later) and later.mean() > 0.99:
            draft.warnings.append(
                f"{c} is later than {draft.time_column} in {later.mean():.0%} of rows: if it is "
                "recorded after the outcome, it leaks it; add it to drop_columns"
            )


def infer(frame: pd.DataFrame, target: str | None, ordered: bool = False) -> Draft:
    """Draft the schema of ``frame`` (a sample) with ``target`` (name, position or last)."""
    names = [str(c) for c in frame.columns]
    frame = frame.set_axis(names, axis=1)
    chosen = resolve_target(names, target)
    kinds, notes = {}, {}
    for c in names:
        kinds[c], notes[c] = column_kind(frame[c])
    draft = Draft(columns=kinds, target=chosen, task=_task(frame[chosen], kinds[chosen]))
    draft.notes, draft.rows = notes, len(frame)
    if draft.task == "classification" and kinds[chosen] != "boolean":
        kinds[chosen] = "categorical"  # class labels, whatever they look like
        chars = _variants(frame[chosen])
        if chars:
            draft.rstrip[chosen] = chars
        draft.classes = sorted({v.rstrip(chars) for v in _text(frame[chosen])})
    for c in names:
        if c == chosen:
            continue
        if frame[c].isna().all():
            draft.drop[c] = "empty in the sample"
        elif _id_like(c, frame[c], kinds[c]):
            if draft.id_column is None and kinds[c] in ("integer", "categorical"):
                draft.id_column = c
            else:
                draft.drop[c] = "text-like id: unique per row"
    if draft.id_column and draft.id_column in draft.drop:
        draft.drop.pop(draft.id_column)
    _time_checks(frame, draft)
    _leaks(frame, draft)
    draft.split = (
        "time" if draft.time_column else "order" if ordered
        else "stratified" if draft.task == "classification" else "random"
    )  # fmt: skip
    return draft


def class_count(draft: Draft) -> int:
    return len(draft.classes) if draft.classes else 2


def numeric_summary(values: pd.Series) -> tuple[float, float]:
    numbers = pd.to_numeric(values, errors="coerce").dropna()
    return (float(np.min(numbers)), float(np.max(numbers))) if len(numbers) else (0.0, 0.0)
