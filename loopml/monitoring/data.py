"""The two sides of a comparison: the champion's training snapshot (the reference) and the
production data (the newest prediction-log rows, or a new batch from the source)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from loopml.aliases import CHAMPION
from loopml.config import CleanConfig, MonitorConfig, SchemaConfig, SourceConfig
from loopml.exceptions import LoopmlError, SourceError
from loopml.predlog import LogTarget, describe, log_exists, read_prediction_log
from loopml.registry import version_metrics
from loopml.schema import conform_frame, with_derived
from loopml.snapshots import Snapshot, read_snapshot
from loopml.sources import read_batch

if TYPE_CHECKING:
    from mlflow import MlflowClient


@dataclass(frozen=True)
class Champion:
    """The monitored model version and what it was trained and tested on."""

    version: str
    data_version: str
    metrics: dict[str, float]


@dataclass(frozen=True)
class Reference:
    frame: pd.DataFrame
    champion: Champion


def reference_data(
    client: MlflowClient, model_name: str, snapshots_dir: Path, schema: SchemaConfig
) -> Reference:
    """The champion's training snapshot, verified (pulled with DVC when missing or altered)."""
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException as exc:
        raise LoopmlError(
            f"{model_name} has no champion to monitor; run the training flow first"
        ) from exc
    version = mv.tags.get("loopml.data_version")
    if not version:
        raise LoopmlError(f"{model_name} v{mv.version} has no loopml.data_version tag")
    path = snapshots_dir / f"{version}.parquet"
    # verified against its md5, pulled with DVC when missing or altered
    snapshot = Snapshot(version, str(path), rows=0, columns=[], source="", dvc_tracked=True)
    frame = conform_frame(read_snapshot(snapshot), schema.kinds)
    champion = Champion(str(mv.version), version, version_metrics(dict(mv.tags)))
    return Reference(frame=frame, champion=champion)


def current_from_log(log_path: LogTarget, schema: SchemaConfig, window_rows: int) -> pd.DataFrame:
    """The newest ``window_rows`` logged predictions, typed by the schema, labels parsed."""
    if not log_exists(log_path):
        raise SourceError(f"{log_path}: no prediction log yet (is the model served?)")
    frame = read_prediction_log(log_path)
    if frame.empty:
        raise SourceError(f"{describe(log_path)}: the prediction log is empty")
    frame = frame.sort_values("ts").tail(window_rows).reset_index(drop=True)
    labels = frame["label"].map(lambda v: json.loads(v) if isinstance(v, str) else None)
    raw = {c: k for c, k in schema.columns.items() if c in frame}
    typed = with_derived(conform_frame(frame.drop(columns=["label"]), raw), schema)
    typed[schema.target] = labels
    typed["_prediction"] = frame["prediction"]
    typed["_probability"] = frame["probability"]
    return typed


def current_data(
    cfg: MonitorConfig,
    log_path: LogTarget,
    source: SourceConfig,
    root: Path,
    schema: SchemaConfig,
    clean: CleanConfig,
) -> pd.DataFrame:
    """Production data: the prediction log's newest rows, or a new batch from the source."""
    if cfg.current == "log":
        frame = current_from_log(log_path=log_path, schema=schema, window_rows=cfg.window_rows)
    else:
        raw = conform_frame(
            read_batch(source, root, schema.text_columns),
            schema.columns,
            clean.strip_whitespace,
            clean.rstrip,
        )
        frame = with_derived(raw, schema)
    if len(frame) < cfg.min_rows:
        raise SourceError(f"only {len(frame)} current rows; monitor.min_rows is {cfg.min_rows}")
    return frame
