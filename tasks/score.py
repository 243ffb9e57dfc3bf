"""score: batch predictions of a registry alias (the champion by default) for a batch of rows.

The rows come from any configured source (``score.source``, the same kinds as ``data.source``);
the predictions go to one Parquet file per run under ``paths.scores`` (written atomically, so a
failed run leaves no partial file) and, by default, into the prediction log, where the
monitoring flow sees batch traffic as it sees served traffic.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from loopml.config import SchemaConfig
from loopml.exceptions import InputError
from loopml.io import write_parquet
from loopml.schema import conform_frame
from loopml.serving import LoadedModel, PredictionLog, load_alias
from loopml.tracking import Tracking

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoredBatch:
    path: str
    rows: int
    model_name: str
    model_version: str
    alias: str
    summary: dict[str, float]


@task(name="load-scorer", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def load_scorer(tracking: Tracking, model_name: str, alias: str) -> LoadedModel:
    """The model version the alias points to, with its input columns."""
    tracking.activate()
    return load_alias(tracking.client(), model_name, alias)


def check_scoring_input(frame: pd.DataFrame, scorer: LoadedModel, source: str) -> pd.DataFrame:
    """The model's input columns typed as in training, or :class:`InputError` listing
    every missing column and every column whose values do not fit its kind."""
    kinds = scorer.model.input_kinds
    problems = []
    missing = sorted(scorer.required - set(frame.columns))
    if missing:
        problems.append(f"missing column(s) the model needs: {missing}")
    present = {c: k for c, k in kinds.items() if c in frame.columns}
    rows = conform_frame(frame[list(present)], present)
    for col, kind in present.items():
        values = rows[col]
        if kind in ("numeric", "integer") and not pd.api.types.is_numeric_dtype(values):
            bad = pd.to_numeric(values, errors="coerce").isna() & values.notna()
            problems.append(
                f"column '{col}': {int(bad.sum())} value(s) are not numbers, "
                f"e.g. {values[bad].iloc[0]!r}"
            )
        elif kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(values):
            bad = pd.to_datetime(values, errors="coerce", format="mixed").isna() & values.notna()
            problems.append(
                f"column '{col}': {int(bad.sum())} value(s) are not date-times, "
                f"e.g. {values[bad].iloc[0]!r}"
            )
        elif kind == "boolean" and not (
            pd.api.types.is_bool_dtype(values)
            or values.map(lambda v: v is None or isinstance(v, bool | np.bool_)).all()
        ):
            bad = values.map(lambda v: v is not None and not isinstance(v, bool | np.bool_))
            problems.append(
                f"column '{col}': {int(bad.sum())} value(s) are not true/false, "
                f"e.g. {values[bad].iloc[0]!r}"
            )
    if problems:
        raise InputError(f"cannot score {source}: " + "; ".join(problems))
    for col in kinds:
        if col not in rows.columns:
            rows[col] = np.nan  # an optional column the batch does not have
    return rows[list(kinds)]


@task(name="score-rows", cache_policy=NO_CACHE)
def score_rows(
    frame: pd.DataFrame, scorer: LoadedModel, schema: SchemaConfig, chunk_rows: int, source: str
) -> pd.DataFrame:
    """Predictions for every row, ``chunk_rows`` at a time; the id column is kept so that the
    scores join back to the input."""
    rows = check_scoring_input(frame, scorer, source)
    parts = [
        scorer.model.predict(None, rows.iloc[start : start + chunk_rows])
        for start in range(0, len(rows), chunk_rows)
    ]
    scores = pd.concat(parts, ignore_index=True)
    if schema.id_column and schema.id_column in frame.columns:
        scores.insert(0, schema.id_column, frame[schema.id_column].to_numpy())
    scores["model_version"] = scorer.version
    log.info("scored %s rows with %s v%s", f"{len(scores):,}", scorer.name, scorer.version)
    return scores


@task(name="write-scores", retries=1, retry_delay_seconds=2, cache_policy=NO_CACHE)
def write_scores(scores: pd.DataFrame, out_dir: Path, model_version: str, run_id: str) -> Path:
    """One Parquet file per run (atomic: a failed write leaves nothing behind)."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"scores-{stamp}-v{model_version}-{run_id[:8]}.parquet"
    out_dir.mkdir(parents=True, exist_ok=True)
    write_parquet(path, scores)
    return path


@task(name="log-scores", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def log_scores(
    frame: pd.DataFrame,
    scores: pd.DataFrame,
    scorer: LoadedModel,
    log_path: Path,
    request_id: str,
    enabled: bool,
) -> int:
    """Append the scored rows to the prediction log (one request id for the batch)."""
    if not enabled:
        return 0
    kinds = list(scorer.model.input_kinds)
    present = [c for c in kinds if c in frame.columns]
    features = json.loads(frame[present].to_json(orient="records", date_format="iso"))
    ts = datetime.now(timezone.utc).isoformat()
    prob = scores["probability"].tolist() if "probability" in scores else [None] * len(scores)
    rows = [
        (request_id, i, ts, scorer.version, feat, json.dumps(pred), p)
        for i, (feat, pred, p) in enumerate(
            zip(features, scores["prediction"].tolist(), prob, strict=True)
        )
    ]
    plog = PredictionLog(log_path)
    try:
        plog.append(rows)
    finally:
        plog.close()  # waits until the rows are written
    return len(rows)


@task(name="publish-scores", cache_policy=NO_CACHE)
def publish_scores(
    scores: pd.DataFrame, scorer: LoadedModel, path: Path, logged: int, ui_url: str
) -> ScoredBatch:
    """A Prefect markdown artifact: rows, model version (linked to the MLflow UI), output."""
    from prefect.artifacts import create_markdown_artifact

    summary: dict[str, float] = {"rows": float(len(scores)), "logged_rows": float(logged)}
    if "probability" in scores:
        summary["mean_probability"] = float(scores["probability"].mean())
    if pd.api.types.is_numeric_dtype(scores["prediction"]) and not pd.api.types.is_bool_dtype(
        scores["prediction"]
    ):
        summary["mean_prediction"] = float(scores["prediction"].mean())
    else:
        shares = scores["prediction"].astype(str).value_counts(normalize=True)
        summary.update({f"share_{k}": float(v) for k, v in shares.items()})
    link = f"{ui_url.rstrip('/')}/#/models/{scorer.name}/versions/{scorer.version}"
    lines = [
        f"# Batch scoring: {len(scores):,} rows",
        "",
        f"Model: [{scorer.name} v{scorer.version}]({link}) "
        f"(alias `{scorer.info.get('alias')}`, data version "
        f"`{scorer.info.get('data_version')}`)",
        "",
        f"Output: `{path}`; rows appended to the prediction log: {logged:,}",
        "",
        "| statistic | value |",
        "|---|---:|",
        *[f"| {k} | {v:,.4f} |" for k, v in summary.items()],
    ]
    create_markdown_artifact(
        key="batch-scoring", markdown="\n".join(lines), description="batch scoring"
    )
    return ScoredBatch(
        path=str(path),
        rows=len(scores),
        model_name=scorer.name,
        model_version=scorer.version,
        alias=str(scorer.info.get("alias")),
        summary=summary,
    )


def current_run_id() -> str:
    """The Prefect flow run's id (a fresh id outside a flow run)."""
    import uuid

    from prefect.runtime import flow_run

    return str(flow_run.id or uuid.uuid4().hex)
