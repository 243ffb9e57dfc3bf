"""The serving fast path, second half: the fitted estimator's prediction without scikit-learn's
per-call overhead.

For a request of a few rows, scikit-learn spends most of a ``predict_proba`` call on input
validation, feature-name and dataframe checks, and (for histogram gradient boosting) starting
OpenMP threads for every tree: ~2 ms for one row of a 100-tree model, of which the trees
themselves take a tenth. Here the supported estimators are *compiled* once, when a model is
loaded, to the same arithmetic on the fitted attributes, single-threaded (a server runs one
process per core and batches requests; threads inside a request only contend):

* histogram gradient boosting (classifier and regressor): scikit-learn's own compiled tree
  predictors, called directly with the category bitsets computed once;
* linear models (logistic regression, ridge): one matrix product and the link function.

As with the features, the compiled predictor is a cache and not a second implementation to
trust: :func:`compile_predictor` runs it beside the estimator on probe inputs and returns
``None`` (the server then calls the estimator) when the outputs differ or the estimator is of
another kind, or of a scikit-learn version whose private attributes moved.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from loopml.serving.fastpath import NotCompilable

log = logging.getLogger(__name__)

Predict = Callable[[np.ndarray], np.ndarray]
"""Features (float32, one row per record) to the model output: class probabilities
(classification) or values (regression), as ``LoopmlModel.predict_output`` gives them."""


def _category_codes(est: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The estimator's own preprocessing of native categorical features: each categorical
    column's values to their index among the categories seen in training (NaN when unseen or
    missing), those columns first, then the others as they are."""
    mask = est.is_categorical_
    if est._preprocessor is None or mask is None:
        return lambda x: np.ascontiguousarray(x, dtype=np.float64)  # scikit-learn's X_DTYPE
    columns = np.flatnonzero(mask)
    others = np.flatnonzero(~np.asarray(mask))
    categories = [
        np.asarray(c, dtype=np.float64)
        for c in est._preprocessor.named_transformers_["encoder"].categories_
    ]
    if len(categories) != len(columns) or any(np.any(np.diff(c) <= 0) for c in categories):
        raise NotCompilable("categories not one sorted list per categorical column")

    def codes(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        out = np.empty(x.shape, dtype=np.float64)
        for j, (col, known) in enumerate(zip(columns, categories, strict=True)):
            values = x[:, col]
            at = np.minimum(np.searchsorted(known, values), len(known) - 1)
            out[:, j] = np.where(known[at] == values, at, np.nan)
        out[:, len(columns) :] = x[:, others]
        return out

    return codes


def _hist_gradient_boosting(est: Any, classification: bool) -> Predict:
    predictors = est._predictors  # list (iterations) of lists (one tree per class column)
    baseline = np.asarray(est._baseline_prediction)
    known_cat_bitsets, f_idx_map = est._bin_mapper.make_known_categories_bitsets()
    loss, n_columns = est._loss, est.n_trees_per_iteration_
    preprocess = _category_codes(est)

    def raw(x: np.ndarray) -> np.ndarray:
        x = preprocess(x)
        out = np.zeros((x.shape[0], n_columns), dtype=baseline.dtype, order="F")
        out += baseline
        for trees in predictors:
            for k, tree in enumerate(trees):
                out[:, k] += tree.predict(x, known_cat_bitsets, f_idx_map, 1)
        return out

    if classification:
        return lambda x: loss.predict_proba(raw(x))
    return lambda x: np.asarray(loss.link.inverse(raw(x).ravel()), dtype=float)


def _linear(est: Any, classification: bool) -> Predict:
    """``X @ coef.T + intercept`` in the dtype the estimator was fitted in (float32 features
    give float32 coefficients), then the link as scikit-learn applies it."""
    from scipy.special import expit
    from sklearn.utils.extmath import softmax

    coef, intercept = np.asarray(est.coef_), np.asarray(est.intercept_)

    def decision(x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=coef.dtype) @ coef.T + intercept

    if not classification:
        return decision
    if coef.shape[0] == 1:

        def binary(x: np.ndarray) -> np.ndarray:
            p = expit(decision(x).ravel())
            return np.stack([1 - p, p], axis=1)

        return binary
    return lambda x: softmax(decision(x), copy=False)


def _build(est: Any, classification: bool) -> Predict:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

    if isinstance(est, HistGradientBoostingClassifier | HistGradientBoostingRegressor):
        return _hist_gradient_boosting(est, classification)
    if isinstance(est, LogisticRegression | Ridge | LinearRegression):
        return _linear(est, classification)
    raise NotCompilable(f"no fast path for {type(est).__name__}")


def compile_predictor(predictor: Any, task: str, probe: np.ndarray) -> Predict | None:
    """A features -> output function equal to the estimator's, checked on ``probe`` (features
    of probe records: typical values, missing values, unseen categories), or None."""
    classification = task == "classification"
    try:
        fast = _build(predictor, classification)
        x = np.asarray(probe, dtype=np.float32)
        # beside the probe: its rows scaled, to reach other leaves and the tails of the link
        x = np.vstack([x, x * 3.0, -x])
        got = fast(x)
        want = predictor.predict_proba(x) if classification else predictor.predict(x)
        want = np.asarray(want, dtype=float)
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-9, atol=1e-12):
            raise NotCompilable("compiled predictions differ from the estimator's")
    except Exception as exc:  # anything unexpected: the estimator itself is always right
        log.info("predicting through the estimator (%s)", exc)
        return None
    return fast
