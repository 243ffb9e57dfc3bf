"""The retraining policy: retrain when drift or decay crosses its threshold, at most once per
cooldown. :func:`decide` is pure; the trigger itself belongs to the orchestrator."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from loopml.config import MonitorConfig
from loopml.monitoring.drift import DriftResult

if TYPE_CHECKING:
    from mlflow import MlflowClient

TRIGGERED_TAG = "loopml.triggered"


@dataclass(frozen=True)
class Verdict:
    drift: bool
    decay: bool
    retrain: bool
    """Drift or decay crossed its threshold."""
    due: bool
    """Retraining should be triggered now (not within the cooldown, triggering enabled)."""
    reasons: list[str]
    triggered: bool = False
    flow_run_id: str | None = None

    def with_trigger(self, flow_run_id: str, deployment: str) -> Verdict:
        reason = f"triggered {deployment} (flow run {flow_run_id})"
        return replace(
            self, triggered=True, flow_run_id=flow_run_id, reasons=[*self.reasons, reason]
        )

    @property
    def message(self) -> str:
        return "monitor: " + "; ".join(self.reasons)


def decide(result: DriftResult, cfg: MonitorConfig, last_trigger_age_s: float | None) -> Verdict:
    """The verdict on one monitoring result, every reason stated."""
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
    due = False
    if retrain:
        age = last_trigger_age_s
        if age is not None and age < cfg.cooldown_minutes * 60:
            reasons.append(
                f"retraining not triggered: the last trigger was {age / 60:.1f} min ago "
                f"(cooldown {cfg.cooldown_minutes} min)"
            )
        elif not cfg.trigger:
            reasons.append("retraining not triggered: monitor.trigger is false")
        else:
            due = True
    return Verdict(drift=drift, decay=decay, retrain=retrain, due=due, reasons=reasons)


def last_trigger_age(client: MlflowClient, experiment: str) -> float | None:
    """Seconds since the last monitoring run that triggered a retrain (None: never)."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return None
    runs = client.search_runs(
        [exp.experiment_id],
        f"tags.`{TRIGGERED_TAG}` = 'true'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    if not runs:
        return None
    return time.time() - runs[0].info.start_time / 1000.0
