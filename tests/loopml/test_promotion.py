"""The promotion policy, as a pure function: floors, margin, lower-is-better, bootstrap bound."""

from __future__ import annotations

import pytest

from loopml.config import PromoteConfig
from loopml.promotion import decide


@pytest.mark.parametrize(
    ("metric", "challenger", "champion", "ci", "cfg", "promote", "phrase"),
    [
        (
            "roc_auc",
            {"roc_auc": 0.8},
            None,
            None,
            PromoteConfig(floors={"roc_auc": 0.7}),
            True,
            "no champion yet",
        ),
        (
            "roc_auc",
            {"roc_auc": 0.6},
            None,
            None,
            PromoteConfig(floors={"roc_auc": 0.7}),
            False,
            "fails the floor",
        ),
        (
            "roc_auc",
            {"roc_auc": 0.81},
            0.80,
            None,
            PromoteConfig(min_improvement=0.005),
            True,
            "beats the champion",
        ),
        (
            "roc_auc",
            {"roc_auc": 0.803},
            0.80,
            None,
            PromoteConfig(min_improvement=0.005),
            False,
            "does not beat",
        ),
        (
            "rmse",
            {"rmse": 9.0},
            10.0,
            None,
            PromoteConfig(min_improvement=0.5),
            True,
            "beats the champion",
        ),
        (
            "rmse",
            {"rmse": 9.8},
            10.0,
            None,
            PromoteConfig(min_improvement=0.5),
            False,
            "does not beat",
        ),
        (
            "rmse",
            {"rmse": 12.0},
            None,
            None,
            PromoteConfig(floors={"rmse": 11.0}),
            False,
            "fails the ceiling",
        ),
        (
            "roc_auc",
            {"roc_auc": 0.82},
            0.80,
            (0.78, 0.83),
            PromoteConfig(beyond_champion_ci=True),
            False,
            "within",
        ),
        (
            "roc_auc",
            {"roc_auc": 0.84},
            0.80,
            (0.78, 0.83),
            PromoteConfig(beyond_champion_ci=True),
            True,
            "beyond",
        ),
        (
            "roc_auc",
            {"roc_auc": float("nan")},
            None,
            None,
            PromoteConfig(floors={"roc_auc": 0.5}),
            False,
            "fails",
        ),
    ],
)
def test_decide(metric, challenger, champion, ci, cfg, promote, phrase) -> None:
    ok, reasons = decide(metric, challenger, champion, ci, cfg)
    assert ok is promote
    assert any(phrase in r for r in reasons), reasons


def test_every_reason_is_collected() -> None:
    cfg = PromoteConfig(floors={"roc_auc": 0.9, "accuracy": 0.9}, min_improvement=0.01)
    ok, reasons = decide("roc_auc", {"roc_auc": 0.8, "accuracy": 0.95}, 0.85, None, cfg)
    assert not ok
    assert len(reasons) == 3
    assert any("accuracy 0.9500 passes" in r for r in reasons)
