"""The retraining policy as a pure function: thresholds, cooldown, the trigger switch; no
server, no registry."""

from __future__ import annotations

import pytest

from loopml.config import MonitorConfig
from loopml.monitoring.drift import DriftResult
from loopml.monitoring.policy import decide

CFG = MonitorConfig(drift_share_threshold=0.2, decay_threshold=0.05, cooldown_minutes=60)


def _result(share: float, decay: float | None = None, drifted: tuple[str, ...] = ()) -> DriftResult:
    return DriftResult(
        rows_reference=1000,
        rows_current=1000,
        drift_share=share,
        drifted_columns=list(drifted),
        column_scores={},
        decay=decay,
    )


@pytest.mark.parametrize(
    ("share", "decay", "age_min", "retrain", "due", "phrase"),
    [
        (0.1, None, None, False, False, "drift share 0.10 < threshold 0.2"),
        (0.3, None, None, True, True, "drift share 0.30 >= threshold 0.2"),
        (0.1, 0.08, None, True, True, "performance decay +0.0800 >= threshold 0.05"),
        (0.1, 0.01, None, False, False, "performance decay +0.0100 < threshold 0.05"),
        (0.3, None, 10.0, True, False, "the last trigger was 10.0 min ago (cooldown 60.0 min)"),
        (0.3, None, 90.0, True, True, "drift share 0.30 >= threshold 0.2"),
    ],
)
def test_verdict(
    share: float,
    decay: float | None,
    age_min: float | None,
    retrain: bool,
    due: bool,
    phrase: str,
) -> None:
    verdict = decide(_result(share, decay), CFG, None if age_min is None else age_min * 60)
    assert (verdict.retrain, verdict.due, verdict.triggered) == (retrain, due, False)
    assert any(phrase in r for r in verdict.reasons), verdict.reasons


def test_trigger_switch_and_named_columns() -> None:
    off = CFG.model_copy(update={"trigger": False})
    verdict = decide(_result(0.5, drifted=("age", "plan")), off, None)
    assert verdict.retrain and not verdict.due
    assert "(drifted: age, plan)" in verdict.reasons[0]
    assert "monitor.trigger is false" in verdict.reasons[-1]


def test_a_trigger_is_recorded_with_its_run() -> None:
    verdict = decide(_result(0.5), CFG, None).with_trigger("abc", "training/training")
    assert verdict.triggered and verdict.flow_run_id == "abc"
    assert verdict.reasons[-1] == "triggered training/training (flow run abc)"
    assert verdict.message.startswith("monitor: drift share 0.50")
