"""The monitoring flow: Evidently drift and quality checks of production data against the
champion's training snapshot; retrains through the ``training`` deployment when due.

Wiring only: every step is a task from ``tasks/``, called with keywords.
"""

from __future__ import annotations

from typing import Any

from prefect import flow

from loopml.config import load_params
from tasks.monitor import (
    Verdict,
    champion_model,
    current_data,
    decide_and_trigger,
    drift_report,
    log_monitoring,
    reference_data,
)
from tasks.tracking import setup


@flow(name="monitoring", log_prints=False)
def monitoring(
    params_path: str = "params.yaml", overrides: dict[str, Any] | None = None
) -> Verdict:
    """Compare production data with the champion's training data; retrain when it drifted.

    Args:
        params_path: the params.yaml to load.
        overrides: nested keys that replace those of params.yaml for this run.
    """
    params = load_params(params_path, overrides)
    schema = params.data.schema_
    tracking = setup(params=params)
    reference, champion = reference_data(
        tracking=tracking,
        model_name=params.promote.model_name,
        snapshots_dir=params.path("snapshots"),
        schema=schema,
    )
    current = current_data(
        cfg=params.monitor,
        log_path=params.path("prediction_log"),
        source=params.data.source,
        root=params.root,
        schema=schema,
        clean=params.data.clean,
    )
    model = champion_model(tracking=tracking, model_name=params.promote.model_name)
    result = drift_report(
        reference=reference,
        current=current,
        schema=schema,
        cfg=params.monitor,
        seed=params.project.seed,
        model=model,
        reference_metrics=champion["metrics"],
        metric=params.primary_metric,
    )
    verdict = decide_and_trigger(
        result=result,
        cfg=params.monitor,
        tracking=tracking,
        params_path=str(params_path),
        overrides=overrides,
    )
    log_monitoring(
        tracking=tracking, cfg=params.monitor, result=result, verdict=verdict, champion=champion
    )
    return verdict
