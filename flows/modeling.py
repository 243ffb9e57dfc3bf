"""The model stages: train -> evaluate. Each is a flow of its own (a DVC stage) and a subflow of
``training``; given no input, a stage reads what the previous one wrote."""

from __future__ import annotations

from typing import Any

from prefect import flow

from loopml.candidates import TrainedCandidates
from loopml.config import load_params
from loopml.evaluation import Evaluated
from loopml.features import FeatureSet
from loopml.fit_plan import merge_trials, plan_fits
from loopml.models import allowances
from loopml.runs import parent_run
from tasks._executors import candidate_runner
from tasks._policies import STOPPABLE
from tasks.evaluate import evaluate_candidate, log_evaluation, write_reports
from tasks.features import current_features, load_model_data
from tasks.tracking import log_run_context, setup_tracking
from tasks.train import log_candidate, read_candidates, record_candidates, train_candidate

CANDIDATES_FILE = "candidates.json"


@flow(name="train", **STOPPABLE)
def train(
    params_path: str = "params.yaml",
    overrides: dict[str, Any] | None = None,
    feature_set: FeatureSet | None = None,
    parent_run_id: str | None = None,
) -> TrainedCandidates:
    """Fit every enabled candidate on the features (default: those on disk) and log each as a
    child run of ``parent_run_id`` (default: a new parent run)."""
    params = load_params(params_path, overrides)
    feature_set = feature_set or current_features(features_dir=params.path("features"))
    tracking = setup_tracking(params=params)
    data = load_model_data(feature_set=feature_set, table=params.data.table, cfg=params.features)
    with parent_run(
        tracking=tracking, params=params, name="train", existing=parent_run_id
    ) as run_id:
        log_run_context(tracking=tracking, run_id=run_id, params=params, features=feature_set)
        enabled = params.train.enabled
        plans = plan_fits(
            enabled=enabled,
            allowed=allowances(budget=params.train.time_budget, count=len(enabled)),
            per_trial=params.train.executor.parallel,
            seed=params.project.seed,
        )
        with candidate_runner(executor=params.train.executor) as runner:
            futures = [
                runner.submit(
                    train_candidate,
                    parameters={
                        "candidate": plan.candidate,
                        "index": plan.index,
                        "data": data,
                        "metric": params.primary_metric,
                        "lightning": params.train.lightning,
                        "seed": params.project.seed,
                        "allowance": plan.allowance,
                        "trial": plan.trial,
                    },
                )
                for plan in plans
            ]
            results = [future.result() for future in futures]
        fits = merge_trials(results=results, plans=plans, metric=params.primary_metric)
        logged = [
            log_candidate(
                fit=fit, data=data, params=params, tracking=tracking, parent_run_id=run_id
            )
            for fit in fits
        ]
        return record_candidates(
            logged=logged,
            parent_run_id=run_id,
            data_version=feature_set.data_version,
            metric=params.primary_metric,
            path=params.path("models") / CANDIDATES_FILE,
        )


@flow(name="evaluate", **STOPPABLE)
def evaluate(
    params_path: str = "params.yaml",
    overrides: dict[str, Any] | None = None,
    feature_set: FeatureSet | None = None,
    trained: TrainedCandidates | None = None,
) -> Evaluated:
    """Evaluate every trained candidate (default: those the last train stage recorded) on the
    test split; analyze the selected one; write the DVC metrics and plots."""
    params = load_params(params_path, overrides)
    feature_set = feature_set or current_features(features_dir=params.path("features"))
    trained = trained or read_candidates(path=params.path("models") / CANDIDATES_FILE)
    tracking = setup_tracking(params=params)
    data = load_model_data(feature_set=feature_set, table=params.data.table, cfg=params.features)
    evaluations = [
        evaluate_candidate(
            candidate=candidate,
            data=data,
            cfg=params.evaluate,
            metric=params.primary_metric,
            seed=params.project.seed,
            analyze=index == trained.best,
        )
        for index, candidate in enumerate(trained.candidates)
    ]
    for candidate, evaluation in zip(trained.candidates, evaluations, strict=True):
        log_evaluation(tracking=tracking, run_id=candidate.run_id, evaluation=evaluation)
    return write_reports(
        best=evaluations[trained.best], evaluations=evaluations, reports_dir=params.path("reports")
    )
