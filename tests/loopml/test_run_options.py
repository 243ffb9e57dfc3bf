"""Typed run options (the Prefect UI's form): limits, and the params.yaml keys they override."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from loopml.config.run_options import (
    DataOptions,
    MonitoringRun,
    PromoteOptions,
    ScoringRun,
    TrainingRun,
    TrainOptions,
    monitoring_overrides,
    resolve_run,
    scoring_overrides,
    training_params,
)
from loopml.exceptions import ConfigError
from tests.conftest import small_params


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(small_params()))
    return path


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (lambda: TrainOptions(max_epochs=0), "max_epochs"),
        (lambda: TrainOptions(search_trials=1000), "search_trials"),
        (lambda: DataOptions(rows=5), "rows"),
        (lambda: PromoteOptions(min_improvement=2.0), "min_improvement"),
        (lambda: TrainingRun.model_validate({"train": {"epochs": 3}}), "epochs"),
        (lambda: MonitoringRun(window_rows=5), "window_rows"),
        (lambda: MonitoringRun(drift_share_threshold=1.5), "drift_share_threshold"),
        (lambda: MonitoringRun.model_validate({"current": "kafka"}), "current"),
        (lambda: ScoringRun.model_validate({"alias": "champion", "rows": 3}), "rows"),
    ],
)
def test_out_of_range_or_unknown_options_are_refused_with_their_name(build, key: str) -> None:
    with pytest.raises(ValidationError) as info:
        build()
    assert key in str(info.value)


def test_each_option_becomes_an_override_of_the_key_it_names(params_file: Path) -> None:
    run = TrainingRun(
        train=TrainOptions(max_epochs=2, candidates=["logreg"], search_trials=2, time_budget=90),
        promote=PromoteOptions(min_improvement=0.01, floor=0.6, dry_run=True),
        data=DataOptions(rows=1500),
    )
    params, merged = training_params(params_path=str(params_file), overrides=None, run=run)
    assert params.train.lightning.max_epochs == 2
    assert params.train.time_budget == 90
    assert [c.name for c in params.train.candidates if c.enabled] == ["logreg"]
    assert params.data.source.generator.n_rows == 1500
    assert params.promote.min_improvement == 0.01
    assert params.promote.floors["roc_auc"] == 0.6
    assert merged["train"]["lightning"] == {"max_epochs": 2}
    hgb = next(c for c in params.train.candidates if c.name == "hgb")
    assert hgb.search is not None and hgb.search.n_trials == 2


def test_an_empty_run_changes_nothing(params_file: Path) -> None:
    params, merged = training_params(
        params_path=str(params_file), overrides=None, run=TrainingRun()
    )
    assert merged == {}
    assert params.train.lightning.max_epochs == small_params()["train"]["lightning"]["max_epochs"]


def test_an_unknown_candidate_names_the_option_and_the_known_ones(params_file: Path) -> None:
    run = TrainingRun(train=TrainOptions(candidates=["xgboost"]))
    with pytest.raises(ConfigError, match=r"run.train.candidates: \['xgboost'\] not in"):
        training_params(params_path=str(params_file), overrides=None, run=run)


def test_monitoring_and_scoring_options_override_their_keys(params_file: Path) -> None:
    monitor = MonitoringRun(
        current="source", window_rows=500, drift_share_threshold=0.4, trigger=False
    )
    params, _ = resolve_run(str(params_file), None, monitoring_overrides(monitor))
    assert params.monitor.current == "source" and params.monitor.window_rows == 500
    assert params.monitor.drift_share_threshold == 0.4 and params.monitor.trigger is False
    scoring = ScoringRun(alias="challenger", file="incoming/batch.csv")
    params, _ = resolve_run(str(params_file), None, scoring_overrides(scoring))
    assert params.score.alias == "challenger"
    assert params.score.source.kind == "file"
    assert str(params.score.source.file.path) == "incoming/batch.csv"
    assert monitoring_overrides(MonitoringRun()) == {} == scoring_overrides(ScoringRun())
