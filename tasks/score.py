"""score: batch predictions of a registry alias (the champion by default)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from loopml import registry, scoring
from loopml.config import SchemaConfig, SourceConfig
from loopml.predlog import LogTarget
from loopml.registry import LoadedVersion
from loopml.scoring import ScoredBatch
from loopml.sources import describe_source
from loopml.tracking import Tracking
from tasks._policies import IO


@task(name="load-scorer", cache_policy=NO_CACHE, **IO)
def load_scorer(tracking: Tracking, model_name: str, alias: str) -> LoadedVersion:
    """The model version the alias points to (:func:`loopml.registry.load_alias`)."""
    return registry.load_alias(tracking.client(), model_name, alias, verify=True)


@task(name="score-rows", cache_policy=NO_CACHE)
def score_rows(
    frame: pd.DataFrame,
    scorer: LoadedVersion,
    table: SchemaConfig,
    chunk_rows: int,
    source: SourceConfig,
) -> pd.DataFrame:
    """A prediction for every row (:func:`loopml.scoring.score_frame`); errors name the source."""
    return scoring.score_frame(frame, scorer, table, chunk_rows, describe_source(source))


@task(name="write-scores", cache_policy=NO_CACHE, **IO)
def write_scores(scores: pd.DataFrame, out_dir: Path, model_version: str) -> Path:
    """One Parquet file per run (:func:`loopml.scoring.write_scores`)."""
    return scoring.write_scores(scores, out_dir, model_version, _run_id())


@task(name="log-scores", cache_policy=NO_CACHE, **IO)
def log_scores(
    frame: pd.DataFrame,
    scores: pd.DataFrame,
    scorer: LoadedVersion,
    log_path: LogTarget,
    enabled: bool,
    chunk_rows: int,
) -> int:
    """The scored rows in the prediction log, one request id per run
    (:func:`loopml.scoring.log_scores`)."""
    if not enabled:
        return 0
    return scoring.log_scores(frame, scores, scorer, log_path, f"batch-{_run_id()}", chunk_rows)


@task(name="publish-scores", cache_policy=NO_CACHE)
def publish_scores(
    scores: pd.DataFrame, scorer: LoadedVersion, alias: str, path: Path, logged: int, ui_url: str
) -> ScoredBatch:
    """The ``batch-scoring`` artifact: rows, model version (linked), output."""
    batch = ScoredBatch(
        path=str(path),
        rows=len(scores),
        model_name=scorer.name,
        model_version=scorer.version,
        alias=alias,
        summary=scoring.summarize_scores(scores),
        logged_rows=logged,
    )
    create_markdown_artifact(
        key="batch-scoring",
        markdown=scoring.scores_markdown(batch, scorer.data_version, ui_url),
        description="batch scoring",
    )
    return batch


def _run_id() -> str:
    """The Prefect flow run's id (a fresh id outside a flow run)."""
    return str(flow_run.id or uuid.uuid4().hex)
