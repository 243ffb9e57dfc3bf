"""The root of ``params.yaml``: one typed section per stage, plus project, paths and tracking."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import Field, model_validator

from loopml.config.base import Section
from loopml.config.data import DataConfig
from loopml.config.operations import DeployConfig, MonitorConfig, ScoreConfig, ServeConfig
from loopml.config.pipeline import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    EvaluateConfig,
    FeaturesConfig,
    PromoteConfig,
    TrainConfig,
    ValidateConfig,
)


class ProjectConfig(Section):
    name: str = Field("loopml", min_length=1)
    seed: int = Field(
        42, ge=0, description="Global seed; every stage derives its randomness from it."
    )


class PathsConfig(Section):
    """Every path the pipeline writes. ``dvc.yaml`` refers to the same keys."""

    snapshots: Path = Path("data/snapshots")
    quarantine: Path = Path("data/quarantine")
    current: Path = Path("data/current.json")
    validation: Path = Path("data/validation")
    features: Path = Path("data/features")
    models: Path = Path("data/models")
    suite: Path = Path("gx/suite.json")
    reports: Path = Path("reports")
    locks: Path = Path(".loopml/locks")
    prediction_log: Path = Path("data/predictions.sqlite")
    scores: Path = Path("data/scores")
    runtime: Path = Path(".loopml/run")


class TrackingConfig(Section):
    uri: str = Field(
        "sqlite:///mlflow.db", description="MLflow tracking URI; MLFLOW_TRACKING_URI wins."
    )
    artifact_location: str = "mlartifacts"
    experiment: str = "loopml"
    ui_url: str = Field("http://127.0.0.1:5000", description="Where links to runs point.")


class Params(Section):
    """``params.yaml``. The ``validate`` section is the attribute ``validation`` (``validate``
    is a pydantic method name)."""

    project: ProjectConfig = ProjectConfig()
    paths: PathsConfig = PathsConfig()
    tracking: TrackingConfig = TrackingConfig()
    data: DataConfig
    validation: ValidateConfig = Field(ValidateConfig(), alias="validate")
    features: FeaturesConfig = FeaturesConfig()
    train: TrainConfig
    evaluate: EvaluateConfig = EvaluateConfig()
    promote: PromoteConfig = PromoteConfig()
    monitor: MonitorConfig = MonitorConfig()
    serve: ServeConfig = ServeConfig()
    score: ScoreConfig = ScoreConfig()
    deploy: DeployConfig = DeployConfig()

    # Not read from YAML: the folder that relative paths are resolved against.
    root: Path = Field(default=Path("."), exclude=True)

    @model_validator(mode="after")
    def _metrics_fit_the_task(self) -> Params:
        allowed = (
            CLASSIFICATION_METRICS
            if self.data.table.task == "classification"
            else REGRESSION_METRICS
        )
        problems = []
        metric = self.evaluate.primary_metric
        if metric is not None and metric not in allowed:
            problems.append(f"evaluate.primary_metric '{metric}' is not one of {sorted(allowed)}")
        for name in self.promote.floors:
            if name not in allowed:
                problems.append(f"promote.floors key '{name}' is not one of {sorted(allowed)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def primary_metric(self) -> str:
        if self.evaluate.primary_metric:
            return self.evaluate.primary_metric
        return "roc_auc" if self.data.table.task == "classification" else "rmse"

    def path(self, key: str) -> Path:
        """Absolute path of ``paths.<key>``."""
        return self.resolve(getattr(self.paths, key))

    def resolve(self, p: Path | str) -> Path:
        """``p`` made absolute against the project root (the folder of params.yaml)."""
        p = Path(p)
        return p if p.is_absolute() else (self.root / p)

    def digest(self) -> str:
        """A stable hash of every parameter (recorded on runs and model versions)."""
        blob = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
