"""Permutation importance of a model's raw input columns: the drop of a metric when one column
is shuffled.

The shuffles are transformed and predicted in stacks of up to :data:`BATCH_ROWS` rows, not one
call per shuffle: a model's cost per call (the transformer's pandas overhead, a tree ensemble's
Python loop over its trees) is then paid a few times instead of once per shuffle, and the
results are the same, since both the transform and the prediction are row by row.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

import numpy as np
import pandas as pd

from loopml.config import LOWER_IS_BETTER
from loopml.metrics import fast_metric
from loopml.pyfunc import LoopmlModel

BATCH_ROWS = 100_000
"""Rows transformed or predicted in one call; what is held at once is bounded by it."""

T = TypeVar("T")


def _stacks(items: Iterable[T], rows: list[int], limit: int) -> Iterator[list[T]]:
    """``items`` in consecutive groups of at most ``limit`` rows (``rows[i]`` is item i's), one
    item alone where it is larger."""
    group: list[T] = []
    total = 0
    for item, n in zip(items, rows, strict=True):
        if group and total + n > limit:
            yield group
            group, total = [], 0
        group.append(item)
        total += n
    if group:
        yield group


def _split(stacked: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    return np.split(stacked, np.cumsum(sizes)[:-1])


def _features(model: LoopmlModel, frames: list[pd.DataFrame]) -> list[np.ndarray]:
    """The model's features of each frame, transformed in stacks."""
    out: list[np.ndarray] = []
    for group in _stacks(frames, [len(f) for f in frames], BATCH_ROWS):
        stacked = model.features(pd.concat(group, ignore_index=True))
        out.extend(_split(stacked, [len(f) for f in group]))
    return out


def _scores(
    model: LoopmlModel, matrices: Iterable[np.ndarray], y: np.ndarray, metric: str, rows: int
) -> Iterator[float]:
    """``metric`` of the model on each feature matrix (``rows`` rows each), predicted in
    stacks; the matrices are consumed as they come."""
    per_stack = max(1, BATCH_ROWS // max(rows, 1))
    batch: list[np.ndarray] = []
    for matrix in matrices:
        batch.append(matrix)
        if len(batch) == per_stack:
            yield from _stack_scores(model, batch, y, metric)
            batch = []
    if batch:
        yield from _stack_scores(model, batch, y, metric)


def _stack_scores(
    model: LoopmlModel, batch: list[np.ndarray], y: np.ndarray, metric: str
) -> list[float]:
    outputs = _split(model.output_of(np.vstack(batch)), [len(m) for m in batch])
    return [fast_metric(metric, model.task, y, out) for out in outputs]


def _shuffled(rows: pd.DataFrame, col: str, order: np.ndarray) -> pd.DataFrame:
    shuffled = rows.copy()
    shuffled[col] = shuffled[col].to_numpy()[order]
    return shuffled


def permutation_importance(
    model: LoopmlModel,
    rows: pd.DataFrame,
    y: np.ndarray,
    metric: str,
    repeats: int,
    seed: int,
) -> pd.DataFrame:
    """Drop of ``metric`` when one raw input column is shuffled (positive = the model uses it).

    The first shuffle of each column goes through the feature transformer and shows which model
    features depend on that column; further shuffles permute those features' rows directly
    (the same result, since each such feature is a function of that column alone) and skip the
    transformer. Where a feature depends on several columns, every shuffle is transformed.
    """
    rng = np.random.default_rng(seed)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    x = model.features(rows)
    columns = list(model.input_kinds)
    firsts = _features(model, [_shuffled(rows, col, rng.permutation(len(rows))) for col in columns])
    blocks = [
        np.flatnonzero(~(np.isclose(xs, x) | (np.isnan(xs) & np.isnan(x))).all(axis=0))
        for xs in firsts
    ]
    owners = np.zeros(x.shape[1], dtype=int)
    for block in blocks:
        owners[block] += 1
    separable = bool((owners <= 1).all())

    def matrices() -> Iterator[np.ndarray]:
        """The base matrix, then per column its first shuffle and the further ones (drawn in
        the same order as one shuffle at a time)."""
        yield x
        for col, xs, block in zip(columns, firsts, blocks, strict=True):
            yield xs
            for _ in range(repeats - 1):
                order = rng.permutation(len(rows))
                if separable:
                    xp = x.copy()
                    xp[:, block] = x[order][:, block]
                    yield xp
                else:
                    yield model.features(_shuffled(rows, col, order))

    scores = _scores(model, matrices(), y, metric, len(rows))
    base = next(scores)
    records = []
    for col in columns:
        drops = [sign * (base - next(scores)) for _ in range(max(repeats, 1))]
        records.append(
            {"feature": col, "importance": float(np.mean(drops)), "std": float(np.std(drops))}
        )
    return pd.DataFrame(records).sort_values("importance", ascending=False, ignore_index=True)
