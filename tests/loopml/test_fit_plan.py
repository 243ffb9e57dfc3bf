"""The train stage's units of work: a search split into its trials (candidates on Dask) and put
back together gives the fit of the whole search run one trial after another."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_classification

from loopml.candidates import SkippedFit
from loopml.config import CandidateConfig, LightningConfig
from loopml.fit_plan import FitPlan, merge_trials, plan_fits
from loopml.models import Allowance, FitInputs, allowances, fit_candidate

SEARCH = CandidateConfig(
    name="hgb",
    kind="hist_gradient_boosting",
    params={"max_iter": 30},
    search={"method": "grid", "space": {"learning_rate": [0.05, 0.2], "max_leaf_nodes": [7, 31]}},
)
PLAIN = CandidateConfig(name="logreg", kind="linear")


@pytest.fixture(scope="module")
def inputs() -> FitInputs:
    x, y = make_classification(n_samples=1200, n_features=8, random_state=3)
    x = x.astype(np.float32)
    return FitInputs(
        matrices=(x[:800], y[:800], x[800:], y[800:]), task="classification", n_classes=2
    )


def test_only_searches_are_split_and_only_when_asked() -> None:
    enabled = [(0, PLAIN), (2, SEARCH)]
    allowed = allowances(budget=None, count=2)
    assert [p.trial for p in plan_fits(enabled, allowed, per_trial=False, seed=1)] == [None, None]
    plans = plan_fits(enabled[::-1], allowed, per_trial=True, seed=1)
    # whole candidates first: a long one started last would finish alone
    assert [(p.index, p.trial) for p in plans] == [(0, None), (2, 0), (2, 1), (2, 2), (2, 3)]


def test_results_come_back_in_candidate_order(inputs: FitInputs) -> None:
    enabled = [(2, SEARCH), (5, PLAIN)]
    plans = plan_fits(enabled, allowances(budget=None, count=2), per_trial=True, seed=1)
    assert plans[0].index == 5
    results = [
        fit_candidate(
            p.candidate, p.index, inputs, "roc_auc", LightningConfig(), 1, p.allowance, p.trial
        )
        for p in plans
    ]
    assert [r.name for r in merge_trials(results, plans, "roc_auc")] == ["hgb", "logreg"]


def test_the_first_candidates_trials_after_its_first_may_be_skipped() -> None:
    plans = plan_fits([(0, SEARCH)], allowances(budget=10.0, count=1), per_trial=True, seed=1)
    assert [p.allowance.skippable for p in plans] == [False, True, True, True]


def test_merged_trials_are_the_whole_search(inputs: FitInputs) -> None:
    whole = fit_candidate(SEARCH, 2, inputs, "roc_auc", LightningConfig(), 1)
    plans = plan_fits([(2, SEARCH)], [Allowance()], per_trial=True, seed=1)
    parts = [
        fit_candidate(SEARCH, 2, inputs, "roc_auc", LightningConfig(), 1, Allowance(), p.trial)
        for p in plans
    ]
    [merged] = merge_trials(parts, plans, "roc_auc")
    assert isinstance(merged, type(whole))
    assert merged.params == whole.params and merged.val_score == whole.val_score
    assert [(t.params, t.val_score) for t in merged.trials] == [
        (t.params, t.val_score) for t in whole.trials
    ]
    x_val = inputs.matrices[2]
    assert np.array_equal(
        merged.predictor.predict_proba(x_val), whole.predictor.predict_proba(x_val)
    )
    assert not merged.out_of_time


def test_skipped_trials_mark_the_candidate_out_of_time(inputs: FitInputs) -> None:
    plans = [FitPlan(2, SEARCH, Allowance(), t) for t in range(2)]
    done = fit_candidate(SEARCH, 2, inputs, "roc_auc", LightningConfig(), 1, Allowance(), 0)
    skipped = SkippedFit(name="hgb", kind="hist_gradient_boosting")
    [merged] = merge_trials([done, skipped], plans, "roc_auc")
    assert merged.out_of_time and len(merged.trials) == 1
    assert merge_trials([skipped, skipped], plans, "roc_auc") == [skipped]
