"""What a monitoring run leaves behind: an MLflow run in the monitoring experiment (the time
series of drift, the Evidently report, the verdict), a Markdown verdict, a webhook message."""

from __future__ import annotations

import logging

from loopml.config import MonitorConfig
from loopml.exceptions import LoopmlError
from loopml.monitoring.data import Champion
from loopml.monitoring.drift import DriftResult, finite_scores
from loopml.monitoring.policy import TRIGGERED_TAG, Verdict
from loopml.tracking import Tracking

log = logging.getLogger(__name__)


def log_monitoring(
    tracking: Tracking,
    cfg: MonitorConfig,
    result: DriftResult,
    verdict: Verdict,
    champion: Champion,
) -> str:
    """A run in ``monitor.experiment``; returns its id."""
    import mlflow

    tracking.activate()
    client = tracking.client()
    exp = client.get_experiment_by_name(cfg.experiment)
    exp_id = exp.experiment_id if exp else client.create_experiment(cfg.experiment)
    run = client.create_run(
        exp_id,
        run_name="monitoring",
        tags={
            TRIGGERED_TAG: str(verdict.triggered).lower(),
            "loopml.champion_version": champion.version,
            "loopml.data_version": champion.data_version,
        },
    )
    metrics = {
        "drift_share": result.drift_share,
        "drifted_columns": len(result.drifted_columns),
        "rows_current": result.rows_current,
        **{f"drift.{c}": v for c, v in finite_scores(result).items()},
    }
    if result.decay is not None:
        metrics["decay"] = result.decay
        metrics["current_metric"] = (
            result.current_metric if result.current_metric is not None else float("nan")
        )
    with mlflow.start_run(run_id=run.info.run_id):
        mlflow.log_metrics(metrics)
        mlflow.log_text(result.html, "evidently_report.html")
        mlflow.log_text("\n".join(verdict.reasons), "verdict.txt")
    return run.info.run_id


def verdict_markdown(result: DriftResult, verdict: Verdict, champion: Champion) -> str:
    """The verdict with a per-column table (drifted columns first)."""
    lines = [
        "# loopml monitoring",
        f"- champion v{champion.version} (data `{champion.data_version[:12]}`)",
        f"- verdict: **{'retrain' if verdict.retrain else 'no action'}**"
        + (" (triggered)" if verdict.triggered else ""),
        *[f"- {r}" for r in verdict.reasons],
        "",
        "| column | method | score | threshold | drifted |",
        "|---|---|---:|---:|---|",
    ]
    for col, s in sorted(result.column_scores.items(), key=lambda kv: not kv[1].drifted):
        lines.append(
            f"| {col} | {s.method} | {s.score:.4f} | {s.threshold} | {'yes' if s.drifted else ''} |"
        )
    return "\n".join(lines)


def notify(url: str, message: str) -> bool:
    """POST ``{"text": message}`` to a webhook; a failure is logged, never raised."""
    import requests

    from loopml.secrets import expand, redact_url

    try:
        target = expand(url, "monitor.webhook_url")
        requests.post(target, json={"text": message}, timeout=5).raise_for_status()
    except (requests.RequestException, LoopmlError) as exc:
        # The exception's text repeats the URL's path and query: only its kind is logged.
        status = getattr(getattr(exc, "response", None), "status_code", None)
        reason = f"HTTP {status}" if status else type(exc).__name__
        log.warning("webhook %s failed: %s", redact_url(url), reason)
        return False
    return True
