"""A failed expectation in words: what GX found, or what a declared column holds instead of its
kind, as a :class:`~loopml.quality.report.Finding`."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from loopml.quality.report import Finding, short


def _exception_message(info: dict[str, Any]) -> str | None:
    """GX reports exceptions flat, or keyed by the metric that raised them."""
    candidates = [info, *(v for v in info.values() if isinstance(v, dict))]
    for item in candidates:
        message = item.get("exception_message")
        if message and (item.get("raised_exception", True)):
            lines = str(message).strip().splitlines()
            return lines[-1] if lines else "exception"
    return None


def _observed(res: dict[str, Any]) -> str:
    message = _exception_message(res.get("exception_info") or {})
    if message:
        return f"error: {message}"
    result = res.get("result") or {}
    if "observed_value" in result and result["observed_value"] is not None:
        return short(result["observed_value"])
    if "unexpected_percent" in result and result["unexpected_percent"] is not None:
        examples = []
        for v in result.get("partial_unexpected_list") or []:
            if v not in examples:
                examples.append(v)
        ex = f", e.g. {short(examples, 5)}" if examples else ""
        pct, count = result["unexpected_percent"], result.get("unexpected_count")
        return f"{pct:.2f}% unexpected ({count} rows){ex}"
    return "failed"


_FOUND = {"b": "true/false", "i": "integers", "u": "integers", "f": "numbers", "M": "date-times"}


def _misfits(values: pd.Series, kind: str) -> pd.Series:
    """The non-missing values that are not of ``kind``."""
    present = values.dropna()
    if kind in ("numeric", "integer"):
        if pd.api.types.is_bool_dtype(present):
            return present
        return present[pd.to_numeric(present, errors="coerce").isna()]
    if kind == "datetime":
        return present[pd.to_datetime(present, errors="coerce", format="mixed").isna()]
    if kind == "boolean":
        return present[~present.map(lambda v: isinstance(v, bool | np.bool_))]
    return present if pd.api.types.is_numeric_dtype(present) else present.iloc[:0]


@dataclass(frozen=True)
class TypeMisfit:
    """What a column holds instead of its declared kind: counts add up over batches."""

    kind: str
    found: str
    bad: int
    present: int
    examples: tuple[Any, ...]

    @classmethod
    def of(cls, values: pd.Series, kind: str) -> TypeMisfit:
        bad = _misfits(values, kind)
        examples = tuple(v.item() if hasattr(v, "item") else v for v in pd.unique(bad)[:2])
        return cls(
            kind=kind,
            found=_FOUND.get(values.dtype.kind, "text"),
            bad=len(bad),
            present=int(values.notna().sum()),
            examples=examples,
        )

    @staticmethod
    def total(parts: Iterable[TypeMisfit]) -> TypeMisfit:
        """The misfits of several batches of one column, as one."""
        items = list(parts)
        examples: list[Any] = []
        for part in items:
            examples.extend(e for e in part.examples if e not in examples)
        return TypeMisfit(
            kind=items[0].kind,
            found=next((p.found for p in items if p.bad), items[0].found),
            bad=sum(p.bad for p in items),
            present=sum(p.present for p in items),
            examples=tuple(examples[:2]),
        )

    def text(self) -> str:
        share = f"{self.bad:,} of {self.present:,} values" if self.bad else "its values"
        examples = ", ".join(map(repr, self.examples))
        return f"declared {self.kind}, found {self.found} ({share} do not fit, e.g. {examples})"


def _close_match(column: str | None, found: Iterable[str]) -> str:
    undeclared = [str(c) for c in found if c not in (column,)]
    match = difflib.get_close_matches(str(column), undeclared, n=1, cutoff=0.6)
    return f" (the batch has '{match[0]}': renamed?)" if match else ""


def finding(
    res: dict[str, Any], columns: Iterable[str], misfit: TypeMisfit | None = None
) -> Finding:
    """A failed GX result as a finding; ``columns``: the batch's, ``misfit``: for a type
    failure, what the column holds instead."""
    conf = res["expectation_config"]
    kwargs = dict(conf.get("kwargs") or {})
    column = kwargs.pop("column", None)
    kwargs.pop("batch_id", None)
    meta = conf.get("meta") or {}
    check = meta.get("check", "columns")
    if conf["type"] == "expect_column_to_exist":
        observed = "column is absent" + _close_match(column, columns)
    elif check == "types" and misfit is not None:
        observed = misfit.text()
    elif conf["type"] == "expect_column_distinct_values_to_be_in_set" and not _exception_message(
        res.get("exception_info") or {}
    ):
        unseen = (res.get("result") or {}).get("partial_unexpected_list") or []
        observed = f"values never seen before: {short(sorted(set(map(str, unseen))), 5)}"
    else:
        observed = _observed(res)
    return Finding(
        check=check,
        severity=meta.get("level", "blocking"),
        expectation=conf["type"],
        column=column,
        expected=kwargs,
        observed=observed,
    )


def type_column(res: dict[str, Any], kinds: dict[str, str], columns: Iterable[str]) -> str | None:
    """The declared column whose type check ``res`` failed, if it is one and is present."""
    conf = res["expectation_config"]
    column = (conf.get("kwargs") or {}).get("column")
    meta = conf.get("meta") or {}
    if meta.get("check") == "types" and column in kinds and column in set(columns):
        return str(column)
    return None
