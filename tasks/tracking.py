"""tracking: the MLflow store of a run, its context, and the summary of a training run."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

import loopml.tracking
from loopml import runs, summary
from loopml.candidates import TrainedCandidates
from loopml.config import Params
from loopml.evaluation import Evaluated
from loopml.features import FeatureSet
from loopml.promotion import Decision
from loopml.summary import TrainingResult
from loopml.tracking import Tracking
from tasks._policies import IO


@task(name="setup-tracking", cache_policy=NO_CACHE, **IO)
def setup_tracking(params: Params) -> Tracking:
    """The configured MLflow store, with the experiment created
    (:func:`loopml.tracking.setup_tracking`)."""
    return loopml.tracking.setup_tracking(params)


@task(name="log-run-context", cache_policy=NO_CACHE, **IO)
def log_run_context(tracking: Tracking, run_id: str, params: Params, features: FeatureSet) -> None:
    """Params, data version, commit, dataset, GX docs on the parent run
    (:func:`loopml.runs.log_run_context`)."""
    runs.log_run_context(tracking, run_id, params, features)


@task(name="publish-summary", cache_policy=NO_CACHE)
def publish_summary(
    tracking: Tracking,
    trained: TrainedCandidates,
    evaluated: Evaluated,
    decision: Decision | None,
    features: FeatureSet,
    params_file: str,
) -> TrainingResult:
    """The run's summary (:func:`loopml.summary.summarize`), attached to the flow run as the
    ``training-summary`` artifact."""
    result = summary.summarize(tracking, trained, evaluated, decision, features, params_file)
    create_markdown_artifact(
        markdown=result.markdown, key="training-summary", description="loopml training run"
    )
    return result
