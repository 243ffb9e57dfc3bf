"""Typed run parameters of the flows: what the Prefect UI renders as a form (with descriptions,
defaults and limits) and checks before a run starts, and what the flow checks again.

Each option left empty keeps params.yaml's value; a set one becomes an override of the key its
description names, so every run is still described by params.yaml plus overrides.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loopml.config.loading import deep_merge, load_params
from loopml.config.params import Params
from loopml.exceptions import ConfigError


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataOptions(_Options):
    """Where this run's batch comes from."""

    file: str | None = Field(
        None,
        description="Read this CSV or Parquet file (or folder) instead of data.source; relative "
        "to params.yaml. Empty: data.source.",
    )
    rows: int | None = Field(
        None,
        ge=100,
        le=50_000_000,
        description="Rows of the bundled generator (data.source.generator.n_rows).",
    )


class TrainOptions(_Options):
    """What this run trains."""

    candidates: list[str] | None = Field(
        None, description="Only these candidates (names in train.candidates). Empty: all enabled."
    )
    max_epochs: int | None = Field(
        None, ge=1, le=1000, description="Epochs of the Lightning candidate (train.lightning)."
    )
    search_trials: int | None = Field(
        None, ge=1, le=200, description="Trials of every random search (search.n_trials)."
    )
    time_budget: float | None = Field(
        None,
        gt=0,
        description="Seconds all candidates together may train (train.time_budget).",
    )


class PromoteOptions(_Options):
    """How this run's best candidate is judged."""

    min_improvement: float | None = Field(
        None, ge=0.0, le=1.0, description="Margin over the champion (promote.min_improvement)."
    )
    floor: float | None = Field(
        None,
        description="Absolute floor (ceiling for rmse, mae, log_loss) of the primary metric "
        "(promote.floors).",
    )
    dry_run: bool = Field(
        False, description="Train and evaluate only: register nothing, move no alias."
    )


class TrainingRun(_Options):
    """A training run from the Prefect UI: the data, the candidates, the promotion policy."""

    data: DataOptions = DataOptions()
    train: TrainOptions = TrainOptions()
    promote: PromoteOptions = PromoteOptions()


class MonitoringRun(_Options):
    """A monitoring run: what it compares, and whether it may retrain."""

    current: Literal["log", "source"] | None = Field(
        None, description="Production data: the prediction log or a new source batch."
    )
    window_rows: int | None = Field(
        None, ge=10, description="Newest prediction-log rows compared (monitor.window_rows)."
    )
    drift_share_threshold: float | None = Field(
        None, gt=0.0, le=1.0, description="Share of drifted columns that means drift."
    )
    trigger: bool | None = Field(None, description="Start a retrain when due (monitor.trigger).")


class ScoringRun(_Options):
    """A batch-scoring run: which model, which rows."""

    alias: str | None = Field(None, description="Registry alias whose model scores (score.alias).")
    file: str | None = Field(
        None, description="Score this CSV or Parquet file (or folder) instead of score.source."
    )


def _file_source(path: str) -> dict[str, Any]:
    return {"kind": "file", "file": {"path": path}}


def training_overrides(run: TrainingRun, params: Params) -> dict[str, Any]:
    """The keys of params.yaml that ``run`` changes."""
    names = [c.name for c in params.train.candidates]
    unknown = sorted(set(run.train.candidates or []) - set(names))
    if unknown:
        raise ConfigError([f"run.train.candidates: {unknown} not in train.candidates {names}"])
    out: dict[str, Any] = {}
    if run.data.file:
        out.setdefault("data", {})["source"] = _file_source(run.data.file)
    if run.data.rows:
        out.setdefault("data", {}).setdefault("source", {})["generator"] = {"n_rows": run.data.rows}
    train: dict[str, Any] = {}
    if run.train.candidates is not None or run.train.search_trials:
        raw = params.train.model_dump()["candidates"]
        train["candidates"] = [_candidate(c, run.train) for c in raw]
    if run.train.max_epochs:
        train["lightning"] = {"max_epochs": run.train.max_epochs}
    if run.train.time_budget is not None:
        train["time_budget"] = run.train.time_budget
    if train:
        out["train"] = train
    promote: dict[str, Any] = {}
    if run.promote.min_improvement is not None:
        promote["min_improvement"] = run.promote.min_improvement
    if run.promote.floor is not None:
        promote["floors"] = {**params.promote.floors, params.primary_metric: run.promote.floor}
    if run.promote.dry_run:
        promote["dry_run"] = True
    if promote:
        out["promote"] = promote
    return out


def _candidate(raw: dict[str, Any], options: TrainOptions) -> dict[str, Any]:
    if options.candidates is not None:
        raw["enabled"] = raw["name"] in options.candidates
    if options.search_trials and raw.get("search"):
        raw["search"]["n_trials"] = options.search_trials
    return raw


def monitoring_overrides(run: MonitoringRun) -> dict[str, Any]:
    values = run.model_dump(exclude_none=True)
    return {"monitor": values} if values else {}


def scoring_overrides(run: ScoringRun) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if run.alias:
        out["alias"] = run.alias
    if run.file:
        out["source"] = _file_source(run.file)
    return {"score": out} if out else {}


def resolve_run(
    params_path: str, overrides: dict[str, Any] | None, run_overrides: dict[str, Any]
) -> tuple[Params, dict[str, Any]]:
    """params.yaml with ``overrides`` then a run's options (already as overrides), validated;
    and the merged overrides, for the subflows and deployments this run starts."""
    merged = deep_merge(overrides or {}, run_overrides)
    return load_params(params_path, merged), merged


def training_params(
    params_path: str, overrides: dict[str, Any] | None, run: TrainingRun
) -> tuple[Params, dict[str, Any]]:
    """:func:`resolve_run` of a :class:`TrainingRun` (its candidate options need params.yaml's
    candidates)."""
    return resolve_run(
        params_path, overrides, training_overrides(run, load_params(params_path, overrides))
    )
