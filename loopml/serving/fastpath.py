"""The serving fast path: JSON records to model features without pandas.

scikit-learn's ``ColumnTransformer`` costs ~25 ms per call on a one-row frame (pandas and
input-validation overhead), which caps a server at a few dozen batches per second. Here the
fitted transformer is *compiled* once, when a model is loaded, into plain numpy operations on
the fitted statistics (clip bounds, imputation values, scaler parameters, one-hot lookup
tables), applied to the checked request columns (:class:`loopml.serving.inputs.Rows`): a
numeric column becomes a float array in one call, a categorical column an index into its
lookup table.

The compiled transform is a cache, not a second implementation to trust: :func:`compile_features`
runs it beside the reference (``LoopmlModel.features``) on probe rows that include missing
values and unseen categories, and returns ``None`` (the server then uses the reference path)
when the outputs differ or the transformer has a step it does not know.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import attrgetter, methodcaller
from typing import Any

import numpy as np
import pandas as pd

from loopml.serving.inputs import Rows, check_rows, rows_frame

log = logging.getLogger(__name__)


class NotCompilable(Exception):
    """The transformer has a step the fast path does not reproduce."""


# --------------------------------------------------------------------------- compiling
Block = Callable[[Rows], np.ndarray]


def _floats(rows: Rows, cols: list[str]) -> np.ndarray:
    return np.array([rows.columns[c] for c in cols], dtype=float).T  # None is NaN


_DATE_PARTS: dict[str, Callable[[Any], int]] = {
    "hour": attrgetter("hour"),
    "weekday": methodcaller("weekday"),  # Monday 0, as pandas' dayofweek
    "month": attrgetter("month"),
    "day": attrgetter("day"),
    "year": attrgetter("year"),
}


def _date_parts(rows: Rows, cols: list[str], parts: Sequence[str]) -> np.ndarray:
    """Each column's parts, column by column; the checked values are naive datetimes or None
    (NaN in every part)."""
    getters = [_DATE_PARTS[part] for part in parts]
    out = np.empty((rows.count, len(cols) * len(parts)), dtype=float)
    k = 0
    for col in cols:
        values = rows.columns[col]
        gaps = None in values
        for get in getters:
            out[:, k] = (
                [np.nan if d is None else get(d) for d in values]
                if gaps
                else list(map(get, values))
            )
            k += 1
    return out


def _numeric_step(step: Any) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import FunctionTransformer, RobustScaler, StandardScaler

    from loopml.transformers import QuantileClipper, ToFloat

    # A fitted ColumnTransformer holds its "passthrough" blocks as FunctionTransformer(None).
    identity = isinstance(step, FunctionTransformer) and step.func is None
    if step is None or step == "passthrough" or identity or isinstance(step, ToFloat):
        return lambda x: x
    if isinstance(step, QuantileClipper):
        low, high = step.low_, step.high_
        return lambda x: np.clip(x, low, high)
    if isinstance(step, SimpleImputer):
        stats = np.asarray(step.statistics_, dtype=float)
        if np.isnan(stats).any() or not (
            step.missing_values is np.nan
            or (isinstance(step.missing_values, float) and math.isnan(step.missing_values))
        ):
            raise NotCompilable("imputer with empty columns or a custom missing value")
        indicator = getattr(step, "indicator_", None) if step.add_indicator else None
        features = None if indicator is None else np.asarray(indicator.features_)

        def impute(x: np.ndarray) -> np.ndarray:
            nan = np.isnan(x)
            filled = np.where(nan, stats, x)
            if features is None:
                return filled
            return np.hstack([filled, nan[:, features].astype(float)])

        return impute
    if isinstance(step, StandardScaler):
        mean = step.mean_ if step.with_mean else 0.0
        scale = step.scale_ if (step.with_std and step.scale_ is not None) else 1.0
        return lambda x: (x - mean) / scale
    if isinstance(step, RobustScaler):
        center = step.center_ if step.with_centering else 0.0
        scale = step.scale_ if step.with_scaling else 1.0
        return lambda x: (x - center) / scale
    raise NotCompilable(f"no fast path for {type(step).__name__}")


def _steps(pipe: Any) -> list[Any]:
    from sklearn.pipeline import Pipeline

    return [s for _, s in pipe.steps] if isinstance(pipe, Pipeline) else [pipe]


def _numeric_block(pipe: Any, cols: list[str], kinds: dict[str, str]) -> Block:
    from loopml.transformers import DateParts

    steps = _steps(pipe)
    if any(kinds[c] == "datetime" for c in cols):
        if not isinstance(steps[0], DateParts):
            raise NotCompilable("datetime columns without DateParts")
        parts = tuple(steps[0].parts)
        if not set(parts) <= _DATE_PARTS.keys():
            raise NotCompilable(f"date parts {sorted(set(parts) - _DATE_PARTS.keys())}")
        head: Block = lambda rows: _date_parts(rows, cols, parts)  # noqa: E731
        steps = steps[1:]
    else:
        head = lambda rows: _floats(rows, cols)  # noqa: E731
    funcs = [_numeric_step(s) for s in steps]

    def block(rows: Rows) -> np.ndarray:
        x = head(rows)
        for f in funcs:
            x = f(x)
        return x

    return block


def _categorical_block(pipe: Any, cols: list[str]) -> Block:
    """Column-wise lookup tables built by running the fitted pipeline on every known category,
    a missing value and an unseen one."""
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    steps = _steps(pipe)
    encoder = steps[-1]
    if not isinstance(encoder, OneHotEncoder | OrdinalEncoder) or not all(
        isinstance(s, SimpleImputer) and s.strategy == "constant" for s in steps[:-1]
    ):
        raise NotCompilable("categorical pipeline other than constant imputer + an encoder")
    if isinstance(encoder, OrdinalEncoder):
        widths: list[int] | None = [1] * len(cols)
    else:
        widths = getattr(encoder, "_n_features_outs", None)
    if widths is None or len(widths) != len(cols):
        raise NotCompilable("one-hot encoder without per-column widths")
    unseen = "\x00loopml-unseen\x00"
    cats = [[c for c in encoder.categories_[j] if isinstance(c, str)] for j in range(len(cols))]
    n = max(len(c) for c in cats) + 2
    probe = pd.DataFrame(
        {
            col: [cats[j][i] if i < len(cats[j]) else unseen for i in range(n - 1)] + [None]
            for j, col in enumerate(cols)
        },
        dtype=object,
    )
    out = np.asarray(pipe.transform(probe), dtype=float)
    # Per column: the rows of its table (one per known category, then unseen, then missing)
    # and each category's row number; a request column is looked up in one indexing.
    tables: list[tuple[str, dict[Any, int], np.ndarray]] = []
    start = 0
    for j, col in enumerate(cols):
        width = int(widths[j])
        part = out[:, start : start + width]
        rows = np.vstack([part[: len(cats[j])], part[n - 2], part[n - 1]])
        index: dict[Any, int] = {cat: i for i, cat in enumerate(cats[j])}
        index[None] = len(index) + 1  # the table's last row; the unseen row comes before it
        tables.append((col, index, rows))
        start += width
    if start != out.shape[1]:
        raise NotCompilable("one-hot widths do not add up")

    def block(rows: Rows) -> np.ndarray:
        parts = []
        for col, index, table in tables:
            # A missing value (None) has its own row in ``index``; anything unknown is unseen.
            codes = list(map(index.get, rows.columns[col], repeat(len(index) - 1)))
            parts.append(table[codes])
        return np.hstack(parts)

    return block


def _probe_records(
    kinds: dict[str, str], categories: dict[str, list[str]], n: int, seed: int
) -> list[dict[str, Any]]:
    """Synthetic records covering every column: values, missing values, unseen categories."""
    rng = np.random.default_rng(seed)
    stamps = ["2024-01-01T00:00:00", "2024-03-15T13:45:10.250", "2025-12-31T23:59:59Z"]
    records = []
    for i in range(n):
        rec: dict[str, Any] = {}
        for col, kind in kinds.items():
            if i % 5 == 4:
                rec[col] = None
            elif kind == "numeric":
                rec[col] = float(rng.normal(0, 50))
            elif kind == "integer":
                rec[col] = int(rng.integers(-3, 30))
            elif kind == "boolean":
                rec[col] = bool(rng.integers(0, 2))
            elif kind == "datetime":
                rec[col] = stamps[i % len(stamps)]
            else:
                known = categories.get(col) or ["a"]
                rec[col] = known[i % len(known)] if i % 7 else "never-seen-before"
        records.append(rec)
    return records


@dataclass(frozen=True)
class CompiledFeatures:
    """The compiled records -> features function, and the features of the probe records it was
    checked on (they check the compiled predictor too: :mod:`loopml.serving.fastmodel`)."""

    transform: Block
    probe: np.ndarray

    def __call__(self, rows: Rows) -> np.ndarray:
        return self.transform(rows)


def compile_features(model: Any, probe_rows: int = 40) -> CompiledFeatures | None:
    """A records -> features function equal to ``model.features``, or None (use the reference)."""
    from sklearn.compose import ColumnTransformer

    transformer, kinds = model.transformer, model.input_kinds
    try:
        if not isinstance(transformer, ColumnTransformer):
            raise NotCompilable(f"transformer is a {type(transformer).__name__}")
        blocks: list[Block] = []
        categories: dict[str, list[str]] = {}
        for name, pipe, cols in transformer.transformers_:
            if isinstance(pipe, str) and pipe == "drop":
                continue
            cols = list(cols)
            if not cols:
                continue
            if any(not isinstance(c, str) or c not in kinds for c in cols):
                raise NotCompilable(f"block {name!r} selects columns by position or unknown name")
            if all(kinds[c] == "categorical" for c in cols):
                blocks.append(_categorical_block(pipe, cols))
                enc = _steps(pipe)[-1]
                for j, c in enumerate(cols):
                    categories[c] = [v for v in enc.categories_[j] if isinstance(v, str)]
            else:
                blocks.append(_numeric_block(pipe, cols, kinds))

        def compiled(rows: Rows) -> np.ndarray:
            return np.asarray(np.hstack([b(rows) for b in blocks]), dtype=np.float32)

        probe = check_rows(_probe_records(kinds, categories, probe_rows, seed=0), kinds, set())
        fast = compiled(probe)
        reference = model.features(rows_frame(probe, kinds))
        if fast.shape != reference.shape or not np.allclose(
            fast, reference, rtol=1e-5, atol=1e-5, equal_nan=True
        ):
            raise NotCompilable("fast path output differs from the fitted transformer")
    except Exception as exc:  # anything unexpected: the reference path is always right
        log.warning("serving without the fast path (%s): every batch goes through pandas", exc)
        return None
    return CompiledFeatures(compiled, fast)
