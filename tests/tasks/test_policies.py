"""The tasks' Prefect policies: which failures are retried, and the cache keys of fitting and
evaluation (a changed input, setting or seed gives a new key; nothing else does)."""

from __future__ import annotations

import time
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from loopml.config import CandidateConfig, EvaluateConfig, LightningConfig
from loopml.exceptions import ConfigError, DataValidationError, SourceError, VersioningError
from loopml.models import Allowance, allowances
from tasks._policies import evaluation_cache_key, fit_cache_key, retry_transient


class _State:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def result(self, raise_on_failure: bool = False) -> BaseException:
        return self.exc


@pytest.mark.parametrize(
    ("exc", "retried"),
    [
        (SourceError("timeout", transient=True), True),
        (SourceError("404"), False),
        (VersioningError("remote busy"), True),
        (ConfigError(["x: bad"]), False),
        (DataValidationError("v", ["bad"]), False),
        (ConnectionResetError("reset"), True),
        (OSError("disk"), True),
        (ValueError("bad value"), False),
    ],
)
def test_only_transient_failures_are_retried(exc: BaseException, retried: bool) -> None:
    assert retry_transient(None, None, _State(exc)) is retried


def _fit_params(**changes: Any) -> dict[str, Any]:
    base = {
        "data": SimpleNamespace(fingerprint="data-1"),
        "candidate": CandidateConfig(name="hgb", kind="hist_gradient_boosting"),
        "lightning": LightningConfig(),
        "index": 2,
        "seed": 42,
        "metric": "roc_auc",
        "allowance": Allowance(),
    }
    return {**base, **changes}


def test_fit_key_changes_with_every_input_that_shapes_the_model() -> None:
    key = fit_cache_key(None, _fit_params())
    assert key == fit_cache_key(None, _fit_params())
    for change in (
        {"data": SimpleNamespace(fingerprint="data-2")},
        {"candidate": CandidateConfig(name="hgb", kind="hist_gradient_boosting", params={"a": 1})},
        {"seed": 1},
        {"index": 3},
        {"metric": "pr_auc"},
        {"allowance": allowances(budget=60.0, count=1)[0]},  # train.time_budget can cut a fit
    ):
        assert fit_cache_key(None, _fit_params(**change)) != key, change
    # trainer settings matter to the Lightning candidate only
    other = LightningConfig(max_epochs=3)
    assert fit_cache_key(None, _fit_params(lightning=other)) == key
    mlp = CandidateConfig(name="mlp", kind="lightning")
    assert fit_cache_key(None, _fit_params(candidate=mlp, lightning=other)) != fit_cache_key(
        None, _fit_params(candidate=mlp)
    )


def test_a_candidate_skipped_for_time_is_never_cached() -> None:
    """Cached, a skip would repeat on the next run even with time to spare."""
    _, second = allowances(budget=60.0, count=2)
    assert fit_cache_key(None, _fit_params(allowance=second)) is not None
    past = Allowance(budget=60.0, deadline=time.time() - 1)
    assert fit_cache_key(None, _fit_params(allowance=past)) is None
    # the first candidate is never skipped, so its fit (cut at the deadline) is cached
    assert fit_cache_key(None, _fit_params(allowance=replace(past, skippable=False))) is not None


def test_evaluation_key_follows_the_fit_and_the_stage() -> None:
    params = {
        "candidate": SimpleNamespace(fit_key="fit-1"),
        "cfg": EvaluateConfig(),
        "metric": "roc_auc",
        "seed": 42,
    }
    key = evaluation_cache_key(None, params)
    assert (
        evaluation_cache_key(None, {**params, "candidate": SimpleNamespace(fit_key="fit-2")}) != key
    )
    assert evaluation_cache_key(None, {**params, "cfg": EvaluateConfig(plots=False)}) != key
    assert evaluation_cache_key(None, {**params, "analyze": True}) != key  # the analysis
    assert evaluation_cache_key(None, {**params, "analyze": False}) == key
