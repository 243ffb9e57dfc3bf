"""train: fit every candidate declared in ``train.candidates`` and log each to MLflow."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from loopml import candidates, models, runs
from loopml.candidates import LoggedCandidate, SkippedFit, TrainedCandidates
from loopml.config import CandidateConfig, LightningConfig, Params
from loopml.modeldata import ModelData
from loopml.models import Allowance, FitResult
from loopml.tracking import Tracking
from tasks._policies import IO, fit_cache_key


@task(name="train-candidate", cache_key_fn=fit_cache_key, persist_result=True)
def train_candidate(
    candidate: CandidateConfig,
    index: int,
    data: ModelData,
    metric: str,
    lightning: LightningConfig,
    seed: int,
    allowance: Allowance,
    trial: int | None = None,
) -> FitResult | SkippedFit:
    """One candidate (and its search, or one trial of it) fitted on train, scored on validation,
    within its allowance of time; cached by data, settings, seed and code, never when skipped
    (:func:`loopml.models.train_candidate`)."""
    return models.train_candidate(candidate, index, data, metric, lightning, seed, allowance, trial)


@task(name="log-candidate", cache_policy=NO_CACHE, **IO)
def log_candidate(
    fit: FitResult | SkippedFit,
    data: ModelData,
    params: Params,
    tracking: Tracking,
    parent_run_id: str,
) -> LoggedCandidate | SkippedFit:
    """A child MLflow run with the pyfunc model, or tagged skipped
    (:func:`loopml.runs.log_candidate`)."""
    return runs.log_candidate(fit, data, params, tracking, parent_run_id)


@task(name="record-candidates", cache_policy=NO_CACHE, **IO)
def record_candidates(
    logged: list[LoggedCandidate | SkippedFit],
    parent_run_id: str,
    data_version: str,
    metric: str,
    path: Path,
) -> TrainedCandidates:
    """The selected candidate, and ``paths.models/candidates.json`` for the DVC evaluate stage
    (:func:`loopml.candidates.record_candidates`)."""
    return candidates.record_candidates(logged, parent_run_id, data_version, metric, path)


@task(name="read-candidates", cache_policy=NO_CACHE)
def read_candidates(path: Path) -> TrainedCandidates:
    """The candidates recorded by the last train stage."""
    return TrainedCandidates.read(path)
