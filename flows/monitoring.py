"""The monitoring flow: production data against the champion's training snapshot (Evidently
drift, and decay where labels arrived); retraining through the ``training`` deployment when due."""

from __future__ import annotations

from typing import Any

from prefect import flow

from loopml.config.run_options import MonitoringRun, monitoring_overrides, resolve_run
from loopml.monitoring.policy import Verdict
from loopml.predlog import log_target
from tasks._policies import STOPPABLE
from tasks.monitor import (
    champion_model,
    current_data,
    decide,
    drift_report,
    log_monitoring,
    notify,
    reference_data,
    trigger_retraining,
)
from tasks.tracking import setup_tracking


@flow(name="monitoring", **STOPPABLE)
def monitoring(
    params_path: str = "params.yaml",
    run: MonitoringRun = MonitoringRun(),
    overrides: dict[str, Any] | None = None,
) -> Verdict:
    """Compare production data with the champion's training data; retrain when it drifted.

    Args:
        params_path: the params.yaml to load (on the machine that runs the flow).
        run: this run's choices; an empty field keeps params.yaml's value.
        overrides: advanced: any keys of params.yaml, nested.
    """
    params, merged = resolve_run(
        params_path=params_path, overrides=overrides, run_overrides=monitoring_overrides(run)
    )
    table = params.data.table
    tracking = setup_tracking(params=params)
    reference = reference_data(
        tracking=tracking,
        model_name=params.promote.model_name,
        snapshots_dir=params.path("snapshots"),
        table=table,
    )
    current = current_data(
        cfg=params.monitor,
        log_path=log_target(params),
        source=params.data.source,
        root=params.root,
        table=table,
        clean=params.data.clean,
    )
    model = champion_model(tracking=tracking, model_name=params.promote.model_name)
    result = drift_report(
        reference=reference,
        current=current,
        table=table,
        cfg=params.monitor,
        seed=params.project.seed,
        model=model,
        metric=params.primary_metric,
    )
    verdict = decide(result=result, cfg=params.monitor, tracking=tracking)
    verdict = trigger_retraining(
        verdict=verdict, cfg=params.monitor, params_path=str(params_path), overrides=merged
    )
    notify(verdict=verdict, cfg=params.monitor)
    log_monitoring(
        tracking=tracking,
        cfg=params.monitor,
        result=result,
        verdict=verdict,
        champion=reference.champion,
    )
    return verdict
