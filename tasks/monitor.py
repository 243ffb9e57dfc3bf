"""monitor: production data against the champion's training data; retraining when due."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.deployments import run_deployment

from loopml import registry
from loopml.aliases import CHAMPION
from loopml.config import CleanConfig, MonitorConfig, SchemaConfig, SourceConfig
from loopml.monitoring import data, drift, policy, record
from loopml.monitoring.data import Champion, Reference
from loopml.monitoring.drift import DriftResult
from loopml.monitoring.policy import Verdict
from loopml.predlog import LogTarget
from loopml.pyfunc import LoopmlModel
from loopml.tracking import Tracking
from tasks._policies import IO

log = logging.getLogger(__name__)


@task(name="reference-data", cache_policy=NO_CACHE, **IO)
def reference_data(
    tracking: Tracking, model_name: str, snapshots_dir: Path, table: SchemaConfig
) -> Reference:
    """The champion's training snapshot (:func:`loopml.monitoring.data.reference_data`)."""
    return data.reference_data(tracking.client(), model_name, snapshots_dir, table)


@task(name="current-data", cache_policy=NO_CACHE, **IO)
def current_data(
    cfg: MonitorConfig,
    log_path: LogTarget,
    source: SourceConfig,
    root: Path,
    table: SchemaConfig,
    clean: CleanConfig,
) -> pd.DataFrame:
    """Production rows (:func:`loopml.monitoring.data.current_data`)."""
    return data.current_data(cfg, log_path, source, root, table, clean)


@task(name="champion-model", cache_policy=NO_CACHE, **IO)
def champion_model(tracking: Tracking, model_name: str) -> LoopmlModel:
    """The champion, to re-score labelled rows (:func:`loopml.registry.load_alias`)."""
    return registry.load_alias(tracking.client(), model_name, CHAMPION).model


@task(name="drift-report", cache_policy=NO_CACHE)
def drift_report(
    reference: Reference,
    current: pd.DataFrame,
    table: SchemaConfig,
    cfg: MonitorConfig,
    seed: int,
    model: LoopmlModel,
    metric: str,
) -> DriftResult:
    """Evidently drift, and decay where labels arrived
    (:func:`loopml.monitoring.drift.drift_report`)."""
    return drift.drift_report(
        reference.frame, current, table, cfg, seed, model, reference.champion.metrics, metric
    )


@task(name="decide", cache_policy=NO_CACHE, **IO)
def decide(result: DriftResult, cfg: MonitorConfig, tracking: Tracking) -> Verdict:
    """Retrain or not, with every reason (:func:`loopml.monitoring.policy.decide`; the cooldown
    from the monitoring experiment)."""
    age = policy.last_trigger_age(tracking.client(), cfg.experiment)
    verdict = policy.decide(result, cfg, age)
    (log.warning if verdict.retrain else log.info)(verdict.message)
    return verdict


@task(name="trigger-retraining", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def trigger_retraining(
    verdict: Verdict, cfg: MonitorConfig, params_path: str, overrides: dict[str, object] | None
) -> Verdict:
    """Start the training deployment when the verdict says it is due, with the same overrides
    (so it retrains on what was monitored)."""
    if not verdict.due:
        return verdict
    parameters: dict[str, object] = {"params_path": params_path}
    if overrides:
        parameters["overrides"] = overrides
    run = run_deployment(cfg.training_deployment, parameters=parameters, timeout=0)
    return verdict.with_trigger(str(run.id), cfg.training_deployment)


@task(name="notify", cache_policy=NO_CACHE)
def notify(verdict: Verdict, cfg: MonitorConfig) -> bool:
    """Post the verdict to ``monitor.webhook_url`` when retraining is due
    (:func:`loopml.monitoring.record.notify`)."""
    if not (verdict.retrain and cfg.webhook_url):
        return False
    return record.notify(cfg.webhook_url, verdict.message)


@task(name="log-monitoring", cache_policy=NO_CACHE, **IO)
def log_monitoring(
    tracking: Tracking,
    cfg: MonitorConfig,
    result: DriftResult,
    verdict: Verdict,
    champion: Champion,
) -> str:
    """An MLflow run of the monitoring experiment, and the ``monitoring-verdict`` artifact
    (:func:`loopml.monitoring.record.log_monitoring`)."""
    run_id = record.log_monitoring(tracking, cfg, result, verdict, champion)
    create_markdown_artifact(
        markdown=record.verdict_markdown(result, verdict, champion), key="monitoring-verdict"
    )
    return run_id
