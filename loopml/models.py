"""Candidate estimators: construction, fitting, optional hyperparameter search."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import ParameterGrid, ParameterSampler

from loopml.config import CandidateConfig, LightningConfig
from loopml.exceptions import ConfigError, TrainingError
from loopml.metrics import is_better, metric_value
from loopml.modeldata import Matrices, ModelData

log = logging.getLogger(__name__)

_SKLEARN = {
    ("dummy", "classification"): (DummyClassifier, {"strategy": "prior"}),
    ("dummy", "regression"): (DummyRegressor, {"strategy": "mean"}),
    ("linear", "classification"): (LogisticRegression, {"max_iter": 1000}),
    ("linear", "regression"): (Ridge, {}),
    ("hist_gradient_boosting", "classification"): (HistGradientBoostingClassifier, {}),
    ("hist_gradient_boosting", "regression"): (HistGradientBoostingRegressor, {}),
}


class Predictor(Protocol):
    """A fitted estimator on transformed features (scikit-learn's API)."""

    def predict(self, x: np.ndarray) -> np.ndarray: ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Trial:
    params: dict[str, Any]
    val_score: float
    seconds: float


@dataclass(frozen=True)
class FitResult:
    """A fitted candidate: the best of its trials, scored on the validation split."""

    name: str
    kind: str
    predictor: Predictor
    params: dict[str, Any]
    val_score: float
    fit_seconds: float
    trials: list[Trial] = field(default_factory=list)
    history: list[dict[str, float]] = field(default_factory=list)
    key: str = ""
    """Identity of the fit (:func:`loopml.caching.fit_key`), set by :func:`train_candidate`."""


def make_estimator(kind: str, task: str, params: dict[str, Any], seed: int, where: str) -> Any:
    """A scikit-learn estimator; bad parameter names fail with the key path ``where``."""
    cls, defaults = _SKLEARN[(kind, task)]
    valid = set(cls().get_params())
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ConfigError([f"{where}.{k}: not a parameter of {cls.__name__}" for k in unknown])
    kwargs = {**defaults, **params}
    if "random_state" in valid and kind != "dummy":
        kwargs.setdefault("random_state", seed)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError([f"{where}: {exc}"]) from exc


def _output(predictor: Predictor, x: np.ndarray, task: str) -> np.ndarray:
    return predictor.predict_proba(x) if task == "classification" else predictor.predict(x)


def _fit_once(
    kind: str,
    params: dict[str, Any],
    data: Matrices,
    task: str,
    n_classes: int,
    lightning: LightningConfig,
    seed: int,
    where: str,
) -> Predictor:
    x_train, y_train, x_val, y_val = data
    if kind == "lightning":
        from loopml.lightning_model import fit_lightning

        try:
            cfg = lightning.model_copy(update=params) if params else lightning
            cfg = LightningConfig.model_validate(cfg.model_dump())
        except Exception as exc:
            raise ConfigError([f"{where}: {exc}"]) from exc
        return fit_lightning(x_train, y_train, x_val, y_val, task, n_classes, cfg, seed)
    estimator = make_estimator(kind, task, params, seed, where)
    try:
        estimator.fit(x_train, y_train)
    except Exception as exc:
        raise TrainingError(f"{where}: fitting {type(estimator).__name__} failed: {exc}") from exc
    return estimator


def fit_candidate(
    candidate: CandidateConfig,
    index: int,
    data: Matrices,
    task: str,
    n_classes: int,
    metric: str,
    lightning: LightningConfig,
    seed: int,
) -> FitResult:
    """Fit one candidate (and its search trials); score on the validation split."""
    where = f"train.candidates[{index}].params"
    x_val, y_val = data[2], data[3]
    started = time.perf_counter()
    trials: list[Trial] = []
    if candidate.search is None:
        grid: list[dict[str, Any]] = [{}]
    elif candidate.search.method == "grid":
        grid = list(ParameterGrid(candidate.search.space))
    else:
        grid = list(
            ParameterSampler(
                candidate.search.space, n_iter=candidate.search.n_trials, random_state=seed
            )
        )
    best: tuple[Predictor, dict[str, Any], float] | None = None
    for overrides in grid:
        params = {**candidate.params, **overrides}
        t0 = time.perf_counter()
        predictor = _fit_once(candidate.kind, params, data, task, n_classes, lightning, seed, where)
        score = metric_value(metric, task, y_val, _output(predictor, x_val, task))
        trials.append(Trial(params=params, val_score=score, seconds=time.perf_counter() - t0))
        if best is None or is_better(score, best[2], metric):
            best = (predictor, params, score)
    assert best is not None
    predictor, params, score = best
    result = FitResult(
        name=candidate.name,
        kind=candidate.kind,
        predictor=predictor,
        params=params,
        val_score=score,
        fit_seconds=time.perf_counter() - started,
        trials=trials if candidate.search else [],
        history=getattr(predictor, "history", []),
    )
    log.info(
        "candidate %s (%s): val %s = %.4f in %.1fs",
        candidate.name,
        candidate.kind,
        metric,
        score,
        result.fit_seconds,
    )
    return result


def train_candidate(
    candidate: CandidateConfig,
    index: int,
    data: ModelData,
    metric: str,
    lightning: LightningConfig,
    seed: int,
) -> FitResult:
    """Fit one candidate of ``train.candidates`` (``index``) on a feature set's matrices."""
    from loopml.caching import fit_key

    fit = fit_candidate(
        candidate, index, data.matrices(), data.task, data.n_classes, metric, lightning, seed
    )
    key = fit_key(data.fingerprint, candidate, lightning, index, seed, metric)
    return replace(fit, key=key)
