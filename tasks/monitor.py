"""monitor: Evidently drift and quality checks of production data against the champion's
training snapshot, with a retraining trigger that respects a cooldown.

Reference: the snapshot the champion was trained on, found through the ``loopml.data_version``
tag of its model version and read back (``dvc pull`` when it is not in the workspace).
Current: the newest rows of the serving prediction log, or a new batch from the source.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

from loopml.config import LOWER_IS_BETTER, CleanConfig, MonitorConfig, SchemaConfig, SourceConfig
from loopml.exceptions import LoopmlError, SourceError
from loopml.schema import conform_frame
from loopml.tracking import Tracking
from loopml.versioning import dvc_fetch_checkout, find_repo_root

log = logging.getLogger(__name__)


@dataclass
class DriftResult:
    rows_reference: int
    rows_current: int
    drift_share: float
    drifted_columns: list[str]
    column_scores: dict[str, dict[str, Any]]
    labelled_rows: int = 0
    current_metric: float | None = None
    reference_metric: float | None = None
    decay: float | None = None
    html: str = field(default="", repr=False)

    def drifted(self, threshold: float) -> bool:
        return self.drift_share >= threshold

    def decayed(self, threshold: float) -> bool:
        return self.decay is not None and self.decay >= threshold


@dataclass
class Verdict:
    drift: bool
    decay: bool
    retrain: bool
    triggered: bool
    reasons: list[str]
    flow_run_id: str | None = None


@task(name="reference-data", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def reference_data(
    tracking: Tracking, model_name: str, snapshots_dir: Path, schema: SchemaConfig
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The champion's training snapshot, and the champion's version and test metrics."""
    client = tracking.client()
    try:
        mv = client.get_model_version_by_alias(model_name, "champion")
    except Exception as exc:
        raise LoopmlError(
            f"{model_name} has no champion to monitor; run the training flow first"
        ) from exc
    version = mv.tags.get("loopml.data_version")
    if not version:
        raise LoopmlError(f"{model_name} v{mv.version} has no loopml.data_version tag")
    path = snapshots_dir / f"{version}.parquet"
    if not path.is_file():
        root = find_repo_root(snapshots_dir.resolve())
        if root is None or not path.with_name(path.name + ".dvc").is_file():
            raise SourceError(
                f"snapshot {version} of {model_name} v{mv.version} is not available at {path}"
            )
        dvc_fetch_checkout(path, root)
    frame = conform_frame(pd.read_parquet(path), schema.columns)
    metrics = {k[len("metric.") :]: float(v) for k, v in mv.tags.items() if k.startswith("metric.")}
    return frame, {"version": str(mv.version), "data_version": version, "metrics": metrics}


def current_from_log(log_path: Path, schema: SchemaConfig, window_rows: int) -> pd.DataFrame:
    """The newest ``window_rows`` logged predictions, typed by the schema, labels parsed."""
    from loopml.serving import read_prediction_log

    if not log_path.is_file():
        raise SourceError(f"{log_path}: no prediction log yet (is the model served?)")
    frame = read_prediction_log(log_path)
    if frame.empty:
        raise SourceError(f"{log_path}: the prediction log is empty")
    frame = frame.sort_values("ts").tail(window_rows).reset_index(drop=True)
    labels = frame["label"].map(lambda v: json.loads(v) if isinstance(v, str) else None)
    typed = conform_frame(
        frame.drop(columns=["label"]), {c: k for c, k in schema.columns.items() if c in frame}
    )
    typed[schema.target] = labels
    typed["_prediction"] = frame["prediction"].map(json.loads)
    typed["_probability"] = frame["probability"]
    return typed


@task(name="current-data", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def current_data(
    cfg: MonitorConfig,
    log_path: Path,
    source: SourceConfig,
    root: Path,
    schema: SchemaConfig,
    clean: CleanConfig,
) -> pd.DataFrame:
    """Production data: the prediction log's newest rows, or a new batch from the source."""
    if cfg.current == "log":
        frame = current_from_log(log_path=log_path, schema=schema, window_rows=cfg.window_rows)
    else:
        from tasks.collect import read_source

        frame = conform_frame(
            read_source.fn(source=source, root=root),
            schema.columns,
            clean.strip_whitespace,
            clean.rstrip,
        )
    if len(frame) < cfg.min_rows:
        raise SourceError(f"only {len(frame)} current rows; monitor.min_rows is {cfg.min_rows}")
    return frame


@task(name="champion-model", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def champion_model(tracking: Tracking, model_name: str) -> Any:
    """The champion's pyfunc model (to score logged rows whose labels arrived)."""
    from loopml.serving import load_alias

    return load_alias(tracking.client(), model_name, "champion").model


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= n else frame.sample(n, random_state=seed)


@task(name="drift-report", cache_policy=NO_CACHE)
def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: SchemaConfig,
    cfg: MonitorConfig,
    seed: int,
    model: Any = None,
    reference_metrics: dict[str, float] | None = None,
    metric: str = "roc_auc",
) -> DriftResult:
    """Evidently DataDrift + DataSummary (+ quality where labels arrived) on sampled data."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    features = [
        c for c in schema.feature_columns if c in current.columns and c in reference.columns
    ]
    numeric = [c for c in features if schema.columns[c] in ("numeric", "integer")]
    categorical = [c for c in features if schema.columns[c] in ("categorical", "boolean")]
    ref = _sample(reference, cfg.sample_rows, seed)[numeric + categorical].copy()
    cur = _sample(current, cfg.sample_rows, seed)[numeric + categorical].copy()
    for frame in (ref, cur):
        for c in categorical:
            frame[c] = frame[c].astype(object).where(frame[c].notna(), None).astype(str)
        for c in numeric:
            frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    report = Report([DataDriftPreset(drift_share=cfg.drift_share_threshold), DataSummaryPreset()])
    snapshot = report.run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    scores: dict[str, dict[str, Any]] = {}
    share = 0.0
    for m in snapshot.dict()["metrics"]:
        cfg_m = m.get("config", {})
        kind = cfg_m.get("type", "")
        if kind.endswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
        elif kind.endswith("ValueDrift"):
            threshold = float(cfg_m.get("threshold") or 0.0)
            method = str(cfg_m.get("method", ""))
            value = float(m["value"])
            # p-value tests drift when below the threshold; distances when above it.
            drifted = (
                value < threshold
                if "p_value" in method or "test" in method.lower()
                else value >= threshold
            )
            scores[cfg_m["column"]] = {
                "score": value,
                "method": method,
                "threshold": threshold,
                "drifted": drifted,
            }
    with tempfile.TemporaryDirectory() as tmp:
        html_path = Path(tmp) / "report.html"
        snapshot.save_html(str(html_path))
        html = html_path.read_text()
    result = DriftResult(
        rows_reference=len(ref),
        rows_current=len(cur),
        drift_share=share,
        drifted_columns=sorted(c for c, s in scores.items() if s["drifted"]),
        column_scores=scores,
        html=html,
    )
    labelled = _sample(
        current[current[schema.target].notna()] if schema.target in current else current.iloc[:0],
        cfg.sample_rows,
        seed,
    )
    if model is not None and len(labelled) >= cfg.min_labelled_rows:
        from loopml.metrics import classification_metrics, regression_metrics

        output = model.predict_output(labelled[list(model.input_kinds)])
        if schema.task == "classification":
            classes = list(model.classes)
            index = {str(c): i for i, c in enumerate(classes)}
            y = labelled[schema.target].map(lambda v: index.get(str(v), -1)).to_numpy()
            keep = y >= 0
            values = classification_metrics(y[keep], output[keep]) if keep.any() else {}
        else:
            values = regression_metrics(labelled[schema.target].to_numpy(dtype=float), output)
        current_metric = values.get(metric)
        reference_metric = (reference_metrics or {}).get(metric)
        result.labelled_rows = len(labelled)
        result.current_metric = current_metric
        result.reference_metric = reference_metric
        if current_metric is not None and reference_metric is not None:
            sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
            result.decay = sign * (reference_metric - current_metric)
    log.info(
        "drift share %.2f (%d/%d columns drifted)%s",
        share,
        len(result.drifted_columns),
        len(scores),
        ""
        if result.decay is None
        else f"; {metric} decay {result.decay:+.4f} on {result.labelled_rows} labels",
    )
    return result


def _last_trigger_age(tracking: Tracking, experiment: str) -> float | None:
    client = tracking.client()
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs(
        [exp.experiment_id],
        "tags.`loopml.triggered` = 'true'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    return time.time() - runs[0].info.start_time / 1000.0


@task(name="decide-and-trigger", retries=1, retry_delay_seconds=5, cache_policy=NO_CACHE)
def decide_and_trigger(
    result: DriftResult,
    cfg: MonitorConfig,
    tracking: Tracking,
    params_path: str,
    overrides: dict[str, Any] | None = None,
) -> Verdict:
    """Retrain when drift or decay crosses its threshold, unless within the cooldown."""
    reasons = []
    drift = result.drifted(cfg.drift_share_threshold)
    decay = result.decayed(cfg.decay_threshold)
    cmp = ">=" if drift else "<"
    drifted = f" (drifted: {', '.join(result.drifted_columns)})" if result.drifted_columns else ""
    reasons.append(
        f"drift share {result.drift_share:.2f} {cmp} threshold {cfg.drift_share_threshold}{drifted}"
    )
    if result.decay is not None:
        cmp = ">=" if decay else "<"
        reasons.append(
            f"performance decay {result.decay:+.4f} {cmp} threshold {cfg.decay_threshold}"
        )
    retrain = drift or decay
    triggered, flow_run_id = False, None
    if retrain:
        age = _last_trigger_age(tracking, cfg.experiment)
        if age is not None and age < cfg.cooldown_minutes * 60:
            reasons.append(
                f"retraining not triggered: the last trigger was {age / 60:.1f} min ago "
                f"(cooldown {cfg.cooldown_minutes} min)"
            )
        elif not cfg.trigger:
            reasons.append("retraining not triggered: monitor.trigger is false")
        else:
            from prefect.deployments import run_deployment

            parameters: dict[str, Any] = {"params_path": params_path}
            if overrides:  # retrain on the same view of the source that this run monitored
                parameters["overrides"] = overrides
            run = run_deployment(cfg.training_deployment, parameters=parameters, timeout=0)
            triggered, flow_run_id = True, str(run.id)
            reasons.append(f"triggered {cfg.training_deployment} (flow run {flow_run_id})")
    message = "monitor: " + "; ".join(reasons)
    (log.warning if retrain else log.info)(message)
    if retrain and cfg.webhook_url:
        _notify(cfg.webhook_url, message)
    return Verdict(
        drift=drift,
        decay=decay,
        retrain=retrain,
        triggered=triggered,
        reasons=reasons,
        flow_run_id=flow_run_id,
    )


def _notify(url: str, message: str) -> None:
    import requests

    try:
        requests.post(url, json={"text": message}, timeout=5)
    except requests.RequestException as exc:
        log.warning("webhook %s failed: %s", url, exc)


@task(name="log-monitoring", retries=2, retry_delay_seconds=3, cache_policy=NO_CACHE)
def log_monitoring(
    tracking: Tracking,
    cfg: MonitorConfig,
    result: DriftResult,
    verdict: Verdict,
    champion: dict[str, Any],
) -> str:
    """An MLflow run in the monitoring experiment (time series of drift) and a Prefect artifact."""
    import mlflow
    from prefect.artifacts import create_markdown_artifact

    tracking.activate()
    client = tracking.client()
    exp = client.get_experiment_by_name(cfg.experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(cfg.experiment)
    run = client.create_run(
        exp_id,
        run_name="monitoring",
        tags={
            "loopml.triggered": str(verdict.triggered).lower(),
            "loopml.champion_version": champion["version"],
            "loopml.data_version": champion["data_version"],
        },
    )
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.log_metrics(
            {
                "drift_share": result.drift_share,
                "drifted_columns": len(result.drifted_columns),
                "rows_current": result.rows_current,
            }
        )
        mlflow.log_metrics(
            {
                f"drift.{c}": s["score"]
                for c, s in result.column_scores.items()
                if np.isfinite(s["score"])
            }
        )
        if result.decay is not None:
            mlflow.log_metrics(
                {"decay": result.decay, "current_metric": result.current_metric or float("nan")}
            )
        mlflow.log_text(result.html, "evidently_report.html")
        mlflow.log_text("\n".join(verdict.reasons), "verdict.txt")
    lines = [
        "# loopml monitoring",
        f"- champion v{champion['version']} (data `{champion['data_version'][:12]}`)",
        f"- verdict: **{'retrain' if verdict.retrain else 'no action'}**"
        + (" (triggered)" if verdict.triggered else ""),
        *[f"- {r}" for r in verdict.reasons],
        "",
        "| column | method | score | threshold | drifted |",
        "|---|---|---:|---:|---|",
    ]
    for col, s in sorted(result.column_scores.items(), key=lambda kv: not kv[1]["drifted"]):
        lines.append(
            f"| {col} | {s['method']} | {s['score']:.4f} | {s['threshold']} | "
            f"{'yes' if s['drifted'] else ''} |"
        )
    try:
        create_markdown_artifact(markdown="\n".join(lines), key="monitoring-verdict")
    except Exception as exc:
        log.debug("no Prefect artifact: %s", exc)
    return run.info.run_id
