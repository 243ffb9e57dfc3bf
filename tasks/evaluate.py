"""evaluate: test-split metrics, bootstrap intervals, plots, permutation importance."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.cache_policies import NO_CACHE

from loopml import evaluation as evaluating
from loopml import runs
from loopml.candidates import LoggedCandidate
from loopml.config import EvaluateConfig
from loopml.evaluation import Evaluated, Evaluation
from loopml.modeldata import ModelData
from loopml.tracking import Tracking
from tasks._policies import IO, evaluation_cache_key


@task(name="evaluate-candidate", cache_key_fn=evaluation_cache_key, persist_result=True)
def evaluate_candidate(
    candidate: LoggedCandidate,
    data: ModelData,
    cfg: EvaluateConfig,
    metric: str,
    seed: int,
    analyze: bool = False,
) -> Evaluation:
    """Every test metric, the interval of the primary one, the curves; with ``analyze`` also
    permutation importance, worst errors and figures; cached by the fit
    (:func:`loopml.evaluation.evaluate_candidate`)."""
    return evaluating.evaluate_candidate(candidate, data, cfg, metric, seed, analyze)


@task(name="log-evaluation", cache_policy=NO_CACHE, **IO)
def log_evaluation(tracking: Tracking, run_id: str, evaluation: Evaluation) -> None:
    """Test metrics and evaluation files on the candidate's run
    (:func:`loopml.runs.log_evaluation`)."""
    runs.log_evaluation(tracking, run_id, evaluation)


@task(name="write-reports", cache_policy=NO_CACHE, **IO)
def write_reports(best: Evaluation, evaluations: list[Evaluation], reports_dir: Path) -> Evaluated:
    """DVC metrics and plots of the selected candidate (:func:`loopml.evaluation.write_reports`)."""
    return evaluating.write_reports(best, evaluations, reports_dir)
