"""Metrics: the vectorized bootstrap equals the per-resample scikit-learn computation."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from loopml.metrics import bootstrap_interval, bootstrap_roc_auc


@pytest.mark.parametrize("rounding", [None, 1, 2], ids=["distinct", "heavy-ties", "ties"])
def test_bootstrap_roc_auc_equals_sklearn_per_resample(rounding: int | None) -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 3000)
    score = rng.random(3000) * 0.6 + y * 0.3
    if rounding is not None:
        score = np.round(score, rounding)  # tied scores count one half, as in sklearn
    draws = [rng.integers(0, len(y), len(y)) for _ in range(37)]  # not a multiple of the chunk
    fast = bootstrap_roc_auc(y, score, iter(draws))
    slow = [roc_auc_score(y[idx], score[idx]) for idx in draws]
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12)


def test_bootstrap_roc_auc_is_nan_where_a_class_is_missing() -> None:
    y = np.array([0, 0, 1, 1])
    score = np.array([0.1, 0.4, 0.35, 0.8])
    out = bootstrap_roc_auc(y, score, iter([np.array([0, 1, 0, 1]), np.array([0, 1, 2, 3])]))
    assert np.isnan(out[0]) and out[1] == pytest.approx(0.75)


def test_interval_brackets_the_metric_and_narrows_with_data() -> None:
    rng = np.random.default_rng(5)

    def interval(n: int) -> tuple[float, float]:
        y = rng.integers(0, 2, n)
        p1 = np.clip(rng.random(n) * 0.7 + y * 0.25, 0, 1)
        return bootstrap_interval(
            "roc_auc", "classification", y, np.c_[1 - p1, p1], 200, 0.95, seed=0
        )

    small, large = interval(400), interval(20_000)
    assert small[0] < large[0] < large[1] < small[1]
    assert 0.5 < large[0] < large[1] < 1.0


def test_regression_interval_uses_the_named_metric() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=2000)
    pred = y + rng.normal(scale=0.5, size=2000)
    lo, hi = bootstrap_interval("rmse", "regression", y, pred, 200, 0.9, seed=0)
    assert lo < 0.5 < hi and hi - lo < 0.1
