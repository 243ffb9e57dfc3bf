"""Batch scoring: a registry version predicts a batch of raw rows, ``chunk_rows`` at a time.

The predictions go to one Parquet file per run (written atomically: a failed run leaves no
partial file) and, by default, into the prediction log, where monitoring sees batch traffic as
it sees served traffic.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from loopml.config import SchemaConfig
from loopml.exceptions import InputError
from loopml.io import write_parquet
from loopml.predlog import LogTarget, PredictionBatch, PredictionLog, utc_now
from loopml.registry import LoadedVersion
from loopml.schema import conform_frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoredBatch:
    path: str
    rows: int
    model_name: str
    model_version: str
    alias: str
    summary: dict[str, float]
    logged_rows: int


def check_scoring_input(frame: pd.DataFrame, scorer: LoadedVersion, source: str) -> pd.DataFrame:
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


def score_frame(
    frame: pd.DataFrame, scorer: LoadedVersion, schema: SchemaConfig, chunk_rows: int, source: str
) -> pd.DataFrame:
    """Predictions for every row; the id column is kept so that the scores join back."""
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


def write_scores(scores: pd.DataFrame, out_dir: Path, model_version: str, run_id: str) -> Path:
    """One Parquet file per run (atomic: a failed write leaves nothing behind)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = out_dir / f"scores-{stamp}-v{model_version}-{run_id[:8]}.parquet"
    out_dir.mkdir(parents=True, exist_ok=True)
    return write_parquet(path, scores)


def log_scores(
    frame: pd.DataFrame,
    scores: pd.DataFrame,
    scorer: LoadedVersion,
    log_path: LogTarget,
    request_id: str,
    chunk_rows: int = 100_000,
) -> int:
    """Append the scored rows to the prediction log (one request id for the batch, one logged
    part per ``LOG_PART_ROWS`` rows), ``chunk_rows`` rows in memory at a time."""
    present = [c for c in scorer.model.input_kinds if c in frame.columns]
    ts = utc_now()
    plog = PredictionLog(log_path)
    step = min(chunk_rows, LOG_PART_ROWS)
    try:
        for chunk in range(0, len(frame), chunk_rows):
            parts = []
            for start in range(chunk, min(chunk + chunk_rows, len(frame)), step):
                part = frame.iloc[start : start + step][present].reset_index(drop=True)
                columns = json.loads(part.to_json(orient="columns", date_format="iso"))
                scored = scores.iloc[start : start + step]
                prob = scored["probability"].tolist() if "probability" in scored else None
                parts.append(
                    PredictionBatch(
                        request_id,
                        start,
                        ts,
                        scorer.version,
                        {c: list(values.values()) for c, values in columns.items()},
                        scored["prediction"].tolist(),
                        prob,
                    )
                )
            plog.append(parts)
            plog.flush()  # one chunk in memory at a time
    finally:
        plog.close()  # waits until the rows are written
    return len(frame)


LOG_PART_ROWS = 10_000
"""Scored rows per logged part: a part is one database row of a few megabytes."""


def summarize_scores(scores: pd.DataFrame) -> dict[str, float]:
    """Rows, and the mean prediction (regression) or the share of each class."""
    summary: dict[str, float] = {"rows": float(len(scores))}
    if "probability" in scores:
        summary["mean_probability"] = float(scores["probability"].mean())
    prediction = scores["prediction"]
    if pd.api.types.is_numeric_dtype(prediction) and not pd.api.types.is_bool_dtype(prediction):
        summary["mean_prediction"] = float(prediction.mean())
    else:
        shares = prediction.astype(str).value_counts(normalize=True)
        summary.update({f"share_{k}": float(v) for k, v in shares.items()})
    return summary


def scores_markdown(batch: ScoredBatch, data_version: str | None, ui_url: str) -> str:
    """The Prefect artifact of a scoring run: rows, model version (linked), output."""
    link = f"{ui_url.rstrip('/')}/#/models/{batch.model_name}/versions/{batch.model_version}"
    return "\n".join(
        [
            f"# Batch scoring: {batch.rows:,} rows",
            "",
            f"Model: [{batch.model_name} v{batch.model_version}]({link}) "
            f"(alias `{batch.alias}`, data version `{data_version}`)",
            "",
            f"Output: `{batch.path}`; rows appended to the prediction log: {batch.logged_rows:,}",
            "",
            "| statistic | value |",
            "|---|---:|",
            *[f"| {k} | {v:,.4f} |" for k, v in batch.summary.items()],
        ]
    )
