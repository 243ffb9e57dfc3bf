"""score: batch predictions of a registry alias (the champion by default)."""

from __future__ import annotations

import uuid
from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from loopml import registry, scoring
from loopml.config import SchemaConfig, SourceConfig
from loopml.predlog import LogTarget
from loopml.registry import LoadedVersion
from loopml.scoring import ScoredBatch, ScoringOutput
from loopml.sources import describe_source, iter_batch
from loopml.tracking import Tracking
from tasks._policies import IO


@task(name="load-scorer", cache_policy=NO_CACHE, **IO)
def load_scorer(tracking: Tracking, model_name: str, alias: str) -> LoadedVersion:
    """The model version the alias points to (:func:`loopml.registry.load_alias`)."""
    return registry.load_alias(tracking.client(), model_name, alias, verify=True)


@task(name="score-batch", cache_policy=NO_CACHE, **IO)
def score_batch(
    source: SourceConfig,
    root: Path,
    scorer: LoadedVersion,
    alias: str,
    table: SchemaConfig,
    chunk_rows: int,
    out_dir: Path,
    log_path: LogTarget | None,
) -> ScoredBatch:
    """Every row of ``source`` predicted, ``chunk_rows`` at a time, into one Parquet file in
    ``out_dir``, then appended to the prediction log (None: not logged), one request id per run
    (:func:`loopml.scoring.score_batch`); errors name the source. Eight parameters: the
    source, the model and the output, each as params.yaml holds them."""
    return scoring.score_batch(
        chunks=iter_batch(source, root, chunk_rows, table.text_columns),  # as collect reads
        scorer=scorer,
        alias=alias,
        id_column=table.id_column,
        source=describe_source(source),
        output=ScoringOutput(out_dir=out_dir, run_id=_run_id(), log_to=log_path),
        chunk_rows=chunk_rows,
    )


@task(name="publish-scores", cache_policy=NO_CACHE)
def publish_scores(batch: ScoredBatch, data_version: str | None, ui_url: str) -> ScoredBatch:
    """The ``batch-scoring`` artifact: rows, model version (linked), output."""
    create_markdown_artifact(
        key="batch-scoring",
        markdown=scoring.scores_markdown(batch, data_version, ui_url),
        description="batch scoring",
    )
    return batch


def _run_id() -> str:
    """The Prefect flow run's id (a fresh id outside a flow run)."""
    return str(flow_run.id or uuid.uuid4().hex)
