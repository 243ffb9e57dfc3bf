"""tracking: the flow's parent MLflow run, its context (params, data, code), and the summary.

One parent run per flow run, a child run per candidate (:mod:`tasks.train`). Tags on both: the
data version (DVC hash), git commit and params digest, so every model version traces back to
its data and code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from loopml.config import Params
from loopml.metrics import is_better
from loopml.models import FitResult
from loopml.tracking import Tracking, flatten, git_commit, setup_tracking
from tasks.evaluate import Evaluation
from tasks.features import FeatureSet
from tasks.promote import Decision

log = logging.getLogger(__name__)


@dataclass
class CandidateSummary:
    name: str
    kind: str
    val: float
    test: float
    ci: tuple[float, float]
    run_id: str
    run_url: str


@dataclass
class TrainingResult:
    data_version: str
    metric: str
    best: str
    candidates: list[CandidateSummary]
    decision: dict[str, Any] | None
    parent_run_id: str
    parent_run_url: str
    model_url: str | None
    features: FeatureSet | None = None
    markdown: str = ""
    reports: dict[str, str] = field(default_factory=dict)


@task(name="setup-tracking", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def setup(params: Params) -> Tracking:
    """Point MLflow at the configured store and make sure the experiment exists."""
    return setup_tracking(params)


def run_tags(params: Params, data_version: str | None = None) -> dict[str, str]:
    tags = {
        "loopml.git_commit": git_commit(params.root),
        "loopml.params_digest": params.digest(),
        "loopml.project": params.project.name,
    }
    if data_version:
        tags["loopml.data_version"] = data_version
    return tags


@contextmanager
def parent_run(tracking: Tracking, params: Params) -> Iterator[str]:
    """The flow's parent MLflow run; ended FAILED if anything inside raises."""
    client = tracking.client()
    run = client.create_run(tracking.experiment_id, run_name="training", tags=run_tags(params))
    run_id = run.info.run_id
    try:
        yield run_id
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")


@task(name="log-run-context", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def log_run_context(
    tracking: Tracking,
    run_id: str,
    params: Params,
    data_version: str,
    snapshot_path: Path,
    frame: pd.DataFrame,
    validation_dir: Path,
    features_dir: Path,
) -> None:
    """Params (flattened), data version and commit, the dataset input, GX docs, feature schema."""
    import mlflow

    tracking.activate()
    with mlflow.start_run(run_id=run_id):
        flat = flatten("", params.model_dump(mode="json", by_alias=True))
        mlflow.log_params({k: v for k, v in flat.items() if not k.startswith("paths.")})
        mlflow.set_tags(run_tags(params, data_version))
        dataset = mlflow.data.from_pandas(
            frame.head(1000),
            source=str(snapshot_path),
            name=f"{params.project.name}-snapshot",
            digest=data_version[:36],
            targets=params.data.schema_.target,
        )
        mlflow.log_input(dataset, context="training")
        if validation_dir.is_dir():
            mlflow.log_artifacts(str(validation_dir), artifact_path="validation")
        if (features_dir / "features.json").is_file():
            mlflow.log_artifact(str(features_dir / "features.json"), artifact_path="features")


@task(name="select-best", cache_policy=NO_CACHE)
def select_best(fits: list[FitResult], metric: str) -> int:
    """Index of the best candidate by the primary metric on the validation split."""
    best = 0
    for i, fit in enumerate(fits):
        if is_better(fit.val_score, fits[best].val_score, metric):
            best = i
    return best


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or v != v else f"{v:.4f}"


@task(name="publish-summary", cache_policy=NO_CACHE)
def publish_summary(
    tracking: Tracking,
    run_id: str,
    data_version: str,
    metric: str,
    fits: list[FitResult],
    evaluations: list[Evaluation],
    logged: list[dict[str, str]],
    best: int,
    decision: Decision | None,
    reports: dict[str, str],
    features: FeatureSet | None = None,
) -> TrainingResult:
    """A Prefect markdown artifact (and the CLI's summary): data, candidates, decision, links."""
    from prefect.artifacts import create_markdown_artifact

    candidates = [
        CandidateSummary(
            name=f.name,
            kind=f.kind,
            val=f.val_score,
            test=e.test_score,
            ci=e.ci,
            run_id=lg["run_id"],
            run_url=tracking.run_url(lg["run_id"]),
        )
        for f, e, lg in zip(fits, evaluations, logged, strict=True)
    ]
    model_url = tracking.model_url(decision.model_name, decision.version) if decision else None
    lines = [
        "# loopml training run",
        "",
        f"- data version (DVC): `{data_version}`",
        f"- MLflow run: [{run_id[:12]}]({tracking.run_url(run_id)})",
        f"- selected by validation {metric}: **{candidates[best].name}**",
        "",
        f"| candidate | kind | val {metric} | test {metric} | 95% CI | run |",
        "|---|---|---:|---:|---|---|",
    ]
    for i, c in enumerate(candidates):
        mark = " **(best)**" if i == best else ""
        lines.append(
            f"| {c.name}{mark} | {c.kind} | {_fmt(c.val)} | {_fmt(c.test)} | "
            f"{_fmt(c.ci[0])}-{_fmt(c.ci[1])} | [{c.run_id[:8]}]({c.run_url}) |"
        )
    if decision is not None:
        verdict = "promoted to **champion**" if decision.promoted else "kept as **challenger**"
        lines += [
            "",
            f"## {decision.model_name} v{decision.version}: {verdict}",
            f"[model version]({model_url})",
            "",
            *[f"- {r}" for r in decision.reasons],
        ]
    markdown = "\n".join(lines)
    try:
        create_markdown_artifact(
            markdown=markdown, key="training-summary", description="loopml training run"
        )
    except (
        Exception
    ) as exc:  # outside a flow run (DVC stage commands) there is nothing to attach to
        log.debug("no Prefect artifact: %s", exc)
    return TrainingResult(
        data_version=data_version,
        metric=metric,
        best=candidates[best].name,
        candidates=candidates,
        decision=decision.to_dict() if decision else None,
        parent_run_id=run_id,
        parent_run_url=tracking.run_url(run_id),
        model_url=model_url,
        features=features,
        markdown=markdown,
        reports=reports,
    )
