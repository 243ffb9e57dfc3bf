"""Candidates: native categorical splits for gradient boosting, time budgets that stop a
candidate (or its search) and record it, and defaults no worse than scikit-learn's."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from loopml.candidates import SkippedFit
from loopml.config import (
    CandidateConfig,
    FeaturesConfig,
    LightningConfig,
    SchemaConfig,
    SplitConfig,
)
from loopml.features import fit_transformers, transform
from loopml.modeldata import ModelData
from loopml.models import Allowance, FitInputs, allowances, fit_candidate, train_candidate
from loopml.splits import split_frame

SCHEMA = SchemaConfig(
    columns={"zone": "categorical", "size": "numeric", "night": "boolean", "y": "boolean"},
    target="y",
)


def _categorical_data(n: int, seed: int) -> pd.DataFrame:
    """The label depends on a many-valued category (one-hot pools the rare ones)."""
    rng = np.random.default_rng(seed)
    zones = np.array([f"z{i:03d}" for i in range(150)])
    effect = dict(zip(zones, rng.normal(0, 1.5, len(zones)), strict=True))
    zone = rng.choice(zones, n)
    size = rng.normal(0, 1, n)
    night = rng.random(n) < 0.3
    logit = np.vectorize(effect.get)(zone) + 0.5 * size - 0.5 * night
    y = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame({"zone": zone, "size": size, "night": night, "y": y})


@pytest.fixture(scope="module")
def prepared() -> dict:
    frame = _categorical_data(4000, seed=5)
    s = split_frame(frame, SCHEMA, SplitConfig(method="stratified"), seed=1)
    both = fit_transformers(s.train, SCHEMA, FeaturesConfig())
    ys = [part["y"].astype(int).to_numpy() for part in (s.train, s.val, s.test)]
    out = {"splits": s, "ys": ys}
    for encoding in ("onehot", "ordinal"):
        xs = [transform(both.of(encoding), p, SCHEMA) for p in (s.train, s.val, s.test)]
        out[encoding] = xs
    out["mask"] = [str(c).startswith("cat__") for c in both.ordinal.get_feature_names_out()]
    return out


def _inputs(prepared: dict, encoding: str) -> FitInputs:
    xs, ys = prepared[encoding], prepared["ys"]
    categorical = prepared["mask"] if encoding == "ordinal" else None
    return FitInputs((xs[0], ys[0], xs[1], ys[1]), "classification", 2, categorical)


def test_boosting_splits_categories_natively(prepared: dict) -> None:
    hgb = CandidateConfig(name="hgb", kind="hist_gradient_boosting")
    assert (
        hgb.features == "ordinal" and CandidateConfig(name="l", kind="linear").features == "onehot"
    )
    fit = fit_candidate(hgb, 0, _inputs(prepared, "ordinal"), "roc_auc", LightningConfig(), 1)
    assert fit.encoding == "ordinal"
    assert fit.predictor.is_categorical_ is not None and fit.predictor.is_categorical_.any()


def test_default_boosting_is_no_worse_than_scikit_learns(prepared: dict) -> None:
    """On the same split: our default candidate against HistGradientBoostingClassifier() on
    the one-hot features (what loopml fed it before) and on the raw codes."""
    test_x = prepared["ordinal"][2]
    y_test = prepared["ys"][2]
    ours = fit_candidate(
        CandidateConfig(name="hgb", kind="hist_gradient_boosting"),
        0, _inputs(prepared, "ordinal"), "roc_auc", LightningConfig(), 1,
    )  # fmt: skip
    ours_auc = roc_auc_score(y_test, ours.predictor.predict_proba(test_x)[:, 1])
    for encoding in ("onehot", "ordinal"):
        xs = prepared[encoding]
        sk = HistGradientBoostingClassifier(random_state=1).fit(xs[0], prepared["ys"][0])
        sk_auc = roc_auc_score(y_test, sk.predict_proba(xs[2])[:, 1])
        assert ours_auc >= sk_auc - 0.005, (encoding, ours_auc, sk_auc)


def test_a_time_budget_stops_the_search_and_is_recorded(prepared: dict) -> None:
    slow = CandidateConfig(
        name="hgb",
        kind="hist_gradient_boosting",
        params={"max_iter": 400, "early_stopping": False, "max_leaf_nodes": 63},
        search={"method": "grid", "space": {"learning_rate": [0.01, 0.02, 0.03, 0.05, 0.1]}},
        time_budget=0.5,
    )
    fit = fit_candidate(slow, 0, _inputs(prepared, "ordinal"), "roc_auc", LightningConfig(), 1)
    assert fit.out_of_time
    assert len(fit.trials) < 5  # trials were cut
    assert 0.5 < fit.val_score <= 1.0  # the best finished work is kept


def test_a_time_budget_stops_lightning(prepared: dict) -> None:
    mlp = CandidateConfig(name="mlp", kind="lightning", time_budget=1.0)
    cfg = LightningConfig(max_epochs=500, patience=500, batch_size=32, hidden_sizes=[64])
    fit = fit_candidate(mlp, 0, _inputs(prepared, "onehot"), "roc_auc", cfg, 1)
    assert fit.out_of_time and len(fit.history) < 500
    unlimited = CandidateConfig(name="mlp", kind="lightning")
    short = LightningConfig(max_epochs=2, hidden_sizes=[8])
    assert not fit_candidate(
        unlimited, 0, _inputs(prepared, "onehot"), "roc_auc", short, 1
    ).out_of_time


def test_the_shared_budget_gives_each_candidate_what_is_left() -> None:
    first, second, third = allowances(budget=30.0, count=3)
    assert not first.skippable and second.skippable and third.skippable
    assert first.deadline == second.deadline == third.deadline
    assert 25 < first.seconds(None) <= 30  # no budget of its own: what is left of the shared one
    assert first.seconds(5.0) == 5.0  # its own budget when smaller
    assert Allowance().seconds(None) is None and Allowance().seconds(7.0) == 7.0
    assert not second.expired
    assert allowances(budget=None, count=2) == [Allowance(skippable=False), Allowance()]


def test_a_candidate_after_the_shared_deadline_is_skipped_the_first_is_cut(
    prepared: dict,
) -> None:
    past = Allowance(budget=1.0, deadline=time.time() - 1.0)
    slow = CandidateConfig(
        name="hgb",
        kind="hist_gradient_boosting",
        params={"max_iter": 400, "early_stopping": False, "max_leaf_nodes": 63},
    )
    unread: ModelData = None  # type: ignore[assignment]  # skipped before any data is read
    skipped = train_candidate(slow, 1, unread, "roc_auc", LightningConfig(), 1, past)
    assert skipped == SkippedFit(name="hgb", kind="hist_gradient_boosting")
    # The first candidate is never skipped: it fits what it can, kept and marked out of time.
    first = Allowance(budget=1.0, deadline=time.time() - 1.0, skippable=False)
    inputs = _inputs(prepared, "ordinal")
    fit = fit_candidate(slow, 0, inputs, "roc_auc", LightningConfig(), 1, first)
    assert fit.out_of_time and fit.predictor.n_iter_ < 400
    assert 0.5 < fit.val_score <= 1.0
