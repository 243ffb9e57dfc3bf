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

from loopml.candidates import SkippedFit
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
    encoding: str = "onehot"
    """The feature representation it was fitted on (its served model bundles that one)."""
    out_of_time: bool = False
    """Its time budget ran out: trials were cut or a fit stopped early."""
    key: str = ""
    """Identity of the fit (:func:`loopml.caching.fit_key`), set by :func:`train_candidate`."""


@dataclass(frozen=True)
class Allowance:
    """How long one candidate may train: its own ``time_budget``, and the deadline of
    ``train.time_budget`` shared by every candidate of the run."""

    budget: float | None = None
    """``train.time_budget`` as configured (part of the fit's identity)."""
    deadline: float | None = None
    """Wall-clock time (``time.time()``) at which ``train.time_budget`` runs out."""
    skippable: bool = True
    """False for the first candidate: a training run always fits at least one."""

    def seconds(self, own: float | None) -> float | None:
        """Seconds left for a candidate whose own budget is ``own`` (None: no limit)."""
        if self.deadline is None:
            return own
        left = self.deadline - time.time()
        return left if own is None else min(own, left)

    @property
    def expired(self) -> bool:
        """The shared deadline has passed and this candidate may be skipped."""
        return self.skippable and self.deadline is not None and time.time() >= self.deadline


def allowances(budget: float | None, count: int) -> list[Allowance]:
    """The allowance of each of ``count`` candidates under ``train.time_budget`` (``budget``
    seconds from now, shared; None: no limit). The first one is never skipped."""
    deadline = None if budget is None else time.time() + budget
    return [Allowance(budget, deadline, skippable=i > 0) for i in range(count)]


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


@dataclass(frozen=True)
class FitInputs:
    """What a candidate is fitted on: one representation's matrices, and the task."""

    matrices: Matrices
    task: str
    n_classes: int
    categorical: list[bool] | None = None
    """Category-code columns (ordinal representation): split on natively by trees."""


def _fit_boosting(estimator: Any, inputs: FitInputs, seconds: float | None) -> bool:
    """Fit gradient boosting, in chunks of iterations when it has a time budget (warm start);
    returns whether the budget ran out before it finished."""
    x_train, y_train = inputs.matrices[0], inputs.matrices[1]
    if inputs.categorical and any(inputs.categorical):
        estimator.set_params(categorical_features=np.asarray(inputs.categorical))
    if seconds is None:
        estimator.fit(x_train, y_train)
        return False
    deadline, target = time.monotonic() + seconds, estimator.max_iter
    step = max(10, target // 10)
    estimator.set_params(warm_start=True, max_iter=min(step, target))
    while True:
        estimator.fit(x_train, y_train)
        done = estimator.n_iter_ >= target or estimator.n_iter_ < estimator.max_iter
        if done:
            return False
        if time.monotonic() >= deadline:
            return True
        estimator.set_params(max_iter=min(estimator.max_iter + step, target))


def _fit_once(
    kind: str,
    params: dict[str, Any],
    inputs: FitInputs,
    lightning: LightningConfig,
    seed: int,
    where: str,
    seconds: float | None,
) -> tuple[Predictor, bool]:
    """One fit of one set of parameters: (the fitted predictor, whether it ran out of time)."""
    if kind == "lightning":
        from loopml.lightning_model import fit_lightning

        try:
            cfg = lightning.model_copy(update=params) if params else lightning
            cfg = LightningConfig.model_validate(cfg.model_dump())
        except Exception as exc:
            raise ConfigError([f"{where}: {exc}"]) from exc
        predictor = fit_lightning(
            inputs.matrices, inputs.task, inputs.n_classes, cfg, seed, seconds
        )
        return predictor, predictor.out_of_time
    estimator = make_estimator(kind, inputs.task, params, seed, where)
    try:
        if kind == "hist_gradient_boosting":
            return estimator, _fit_boosting(estimator, inputs, seconds)
        estimator.fit(inputs.matrices[0], inputs.matrices[1])
    except Exception as exc:
        raise TrainingError(f"{where}: fitting {type(estimator).__name__} failed: {exc}") from exc
    return estimator, False


def search_trials(candidate: CandidateConfig, seed: int) -> list[dict[str, Any]]:
    """The parameter overrides of each trial of a candidate's search (``[{}]``: no search)."""
    if candidate.search is None:
        return [{}]
    if candidate.search.method == "grid":
        return list(ParameterGrid(candidate.search.space))
    return list(
        ParameterSampler(
            candidate.search.space, n_iter=candidate.search.n_trials, random_state=seed
        )
    )


def _chosen(trials: list[dict[str, Any]], trial: int | None) -> list[dict[str, Any]]:
    return trials if trial is None else [trials[trial]]


def fit_candidate(
    candidate: CandidateConfig,
    index: int,
    inputs: FitInputs,
    metric: str,
    lightning: LightningConfig,
    seed: int,
    allowance: Allowance = Allowance(),
    trial: int | None = None,
) -> FitResult:
    """Fit one candidate (and its search trials, or only trial ``trial``, within its time budget
    and the allowance of ``train.time_budget``); score on the validation split; keep the best
    trial."""
    where = f"train.candidates[{index}].params"
    x_val, y_val = inputs.matrices[2], inputs.matrices[3]
    started = time.monotonic()
    budget = allowance.seconds(candidate.time_budget)
    trials: list[Trial] = []
    best: tuple[Predictor, dict[str, Any], float] | None = None
    out_of_time = False
    for overrides in _chosen(search_trials(candidate, seed), trial):
        left = None if budget is None else budget - (time.monotonic() - started)
        if left is not None and left <= 0 and best is not None:
            out_of_time = True  # the remaining trials are cut
            break
        params = {**candidate.params, **overrides}
        t0 = time.monotonic()
        predictor, cut = _fit_once(candidate.kind, params, inputs, lightning, seed, where, left)
        out_of_time = out_of_time or cut
        score = metric_value(metric, inputs.task, y_val, _output(predictor, x_val, inputs.task))
        trials.append(Trial(params=params, val_score=score, seconds=time.monotonic() - t0))
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
        fit_seconds=time.monotonic() - started,
        trials=trials if candidate.search else [],
        history=getattr(predictor, "history", []),
        encoding=candidate.features,
        out_of_time=out_of_time,
    )
    log.info(
        "candidate %s (%s): val %s = %.4f in %.1fs%s",
        candidate.name,
        candidate.kind,
        metric,
        score,
        result.fit_seconds,
        " (out of time)" if out_of_time else "",
    )
    return result


def train_candidate(
    candidate: CandidateConfig,
    index: int,
    data: ModelData,
    metric: str,
    lightning: LightningConfig,
    seed: int,
    allowance: Allowance = Allowance(),
    trial: int | None = None,
) -> FitResult | SkippedFit:
    """Fit one candidate of ``train.candidates`` (``index``), or one trial of its search, on a
    feature set's matrices; skip it when ``train.time_budget`` ran out before it started."""
    from loopml.caching import fit_key

    if allowance.expired:
        log.warning(
            "candidate %s (%s): skipped, train.time_budget ran out before it started",
            candidate.name,
            candidate.kind,
        )
        return SkippedFit(name=candidate.name, kind=candidate.kind)
    encoding = data.encodings[candidate.features]
    inputs = FitInputs(
        matrices=data.matrices(candidate.features),
        task=data.task,
        n_classes=data.n_classes,
        categorical=encoding.categorical,
    )
    fit = fit_candidate(candidate, index, inputs, metric, lightning, seed, allowance, trial)
    key = fit_key(data.fingerprint, candidate, lightning, index, seed, metric, allowance.budget)
    return replace(fit, key=key)
