"""Metrics for classification and regression, with bootstrap confidence intervals.

:func:`metrics_for` is the one place metrics are computed from targets and model output.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from sklearn import metrics as skm

from loopml.config import LOWER_IS_BETTER


def metrics_for(task: str, y: np.ndarray, output: np.ndarray) -> dict[str, float]:
    """Every metric of ``task`` from targets and model output.

    Classification: ``y`` holds class indices 0..k-1 and ``output`` the (n, k) probabilities.
    Regression: ``output`` holds the predictions.
    """
    if task == "classification":
        return _classification(y, output)
    return _regression(y, output)


def _classification(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """``y`` holds class indices 0..k-1, ``proba`` the (n, k) predicted probabilities."""
    k = proba.shape[1]
    pred = proba.argmax(axis=1)
    labels = np.arange(k)
    out = {"accuracy": float(skm.accuracy_score(y, pred))}
    clipped = np.clip(proba, 1e-15, 1.0)
    out["log_loss"] = float(
        skm.log_loss(y, clipped / clipped.sum(axis=1, keepdims=True), labels=labels)
    )
    present = np.unique(y)
    if k == 2:
        out["precision"] = float(skm.precision_score(y, pred, zero_division=0))
        out["recall"] = float(skm.recall_score(y, pred, zero_division=0))
        out["f1"] = float(skm.f1_score(y, pred, zero_division=0))
        if len(present) == 2:
            out["roc_auc"] = float(skm.roc_auc_score(y, proba[:, 1]))
            out["pr_auc"] = float(skm.average_precision_score(y, proba[:, 1]))
        return out
    for avg in ("macro", "weighted"):
        out[f"precision_{avg}"] = float(skm.precision_score(y, pred, average=avg, zero_division=0))
        out[f"recall_{avg}"] = float(skm.recall_score(y, pred, average=avg, zero_division=0))
        out[f"f1_{avg}"] = float(skm.f1_score(y, pred, average=avg, zero_division=0))
    out["precision"], out["recall"], out["f1"] = (
        out["precision_macro"],
        out["recall_macro"],
        out["f1_macro"],
    )
    if len(present) == k:
        for avg in ("macro", "weighted"):
            out[f"roc_auc_{avg}"] = float(
                skm.roc_auc_score(y, proba, multi_class="ovr", average=avg, labels=labels)
            )
        out["roc_auc"] = out["roc_auc_macro"]
        onehot = np.eye(k)[y]
        out["pr_auc"] = float(skm.average_precision_score(onehot, proba, average="macro"))
    return out


def _regression(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
        "mae": float(skm.mean_absolute_error(y, pred)),
        "r2": float(skm.r2_score(y, pred)),
    }


def metric_value(metric: str, task: str, y: np.ndarray, output: np.ndarray) -> float:
    """One metric from targets and model output (probabilities or predictions)."""
    return metrics_for(task, y, output).get(metric, float("nan"))


def is_better(a: float, b: float, metric: str, margin: float = 0.0) -> bool:
    """Whether ``a`` beats ``b`` on ``metric`` by at least ``margin``."""
    if np.isnan(a):
        return False
    if np.isnan(b):
        return True
    return a <= b - margin if metric in LOWER_IS_BETTER else a >= b + margin


def passes_floor(value: float, floor: float, metric: str) -> bool:
    if np.isnan(value):
        return False
    return value <= floor if metric in LOWER_IS_BETTER else value >= floor


def bootstrap_interval(
    metric: str,
    task: str,
    y: np.ndarray,
    output: np.ndarray,
    resamples: int,
    confidence: float,
    seed: int,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric`` over resampled rows."""
    rng = np.random.default_rng(seed)
    n = len(y)
    draws = (rng.integers(0, n, n) for _ in range(resamples))
    binary_auc = (
        metric == "roc_auc" and task == "classification" and output.ndim == 2
    ) and output.shape[1] == 2
    if binary_auc:
        scores = bootstrap_roc_auc(y, output[:, 1], draws)
        values = scores[~np.isnan(scores)].tolist()
    else:
        values = []
        for idx in draws:
            v = fast_metric(metric, task, y[idx], output[idx])
            if not np.isnan(v):
                values.append(v)
    if not values:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_roc_auc(
    y: np.ndarray, score: np.ndarray, draws: Iterable[np.ndarray], chunk: int = 16
) -> np.ndarray:
    """Binary ROC-AUC of each resample (row indices), NaN where a class is absent.

    Equal to ``roc_auc_score(y[idx], score[idx])`` (ties count one half) but computed from
    per-row resample counts on one shared sort of the scores: a few milliseconds for hundreds
    of resamples of tens of thousands of rows, instead of a sort per resample.
    """
    order = np.argsort(score, kind="mergesort")
    s_sorted = score[order]
    positive = (np.asarray(y)[order] == 1).astype(float)
    starts = np.flatnonzero(np.r_[True, s_sorted[1:] != s_sorted[:-1]])  # groups of tied scores
    n = len(score)
    out: list[float] = []
    batch: list[np.ndarray] = []

    def flush() -> None:
        counts = np.stack([np.bincount(idx, minlength=n)[order] for idx in batch]).astype(float)
        pos = np.add.reduceat(counts * positive, starts, axis=1)
        neg = np.add.reduceat(counts * (1.0 - positive), starts, axis=1)
        below = np.cumsum(neg, axis=1) - neg
        num = (pos * (below + 0.5 * neg)).sum(axis=1)
        den = pos.sum(axis=1) * neg.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out.extend(np.where(den > 0, num / den, np.nan).tolist())
        batch.clear()

    for idx in draws:
        batch.append(idx)
        if len(batch) == chunk:
            flush()
    if batch:
        flush()
    return np.asarray(out, dtype=float)


def fast_metric(metric: str, task: str, y: np.ndarray, output: np.ndarray) -> float:
    """The bootstrap's inner loop: only the one metric asked for."""
    if task == "regression":
        if metric == "rmse":
            return float(np.sqrt(np.mean((y - output) ** 2)))
        if metric == "mae":
            return float(np.mean(np.abs(y - output)))
        return float(skm.r2_score(y, output))
    if metric == "roc_auc" and output.shape[1] == 2:
        return float(skm.roc_auc_score(y, output[:, 1])) if len(np.unique(y)) == 2 else float("nan")
    if metric == "accuracy":
        return float(np.mean(output.argmax(axis=1) == y))
    return metric_value(metric, task, y, output)


def select_best(scores: list[float], metric: str) -> int:
    """Index of the best score (of equal scores, the last; NaN never wins over a number)."""
    best = 0
    for i, score in enumerate(scores):
        if is_better(score, scores[best], metric):
            best = i
    return best
