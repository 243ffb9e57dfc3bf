"""The root of ``params.yaml``: one typed section per stage, plus project, paths and tracking."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import Field, field_validator, model_validator

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
from loopml.secrets import refuse_literal_secret


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
    prediction_log_url: str | None = Field(
        None,
        description="A PostgreSQL database for the prediction log instead of the SQLite file "
        "(several server workers and the monitor share it), as a ${ENV_VAR} reference; "
        "LOOPML_PREDICTION_LOG_URL wins.",
    )
    scores: Path = Path("data/scores")
    runtime: Path = Path(".loopml/run")

    _no_literal_secret = field_validator("prediction_log_url")(refuse_literal_secret)

    @field_validator("prediction_log_url")
    @classmethod
    def _a_database(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgresql://", "postgresql+psycopg://", "${")):
            raise ValueError("must be a postgresql:// URL (or leave it unset for the SQLite file)")
        return value


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

    # Not read from YAML: the folder that relative paths are resolved against, and the file.
    root: Path = Field(default=Path("."), exclude=True)
    source: Path = Field(default=Path("params.yaml"), exclude=True)

    @model_validator(mode="after")
    def _sections_agree(self) -> Params:
        problems = [*self._metric_problems(), *self._split_problems()]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _metric_problems(self) -> list[str]:
        classification = self.data.table.task == "classification"
        allowed = sorted(CLASSIFICATION_METRICS if classification else REGRESSION_METRICS)
        problems = []
        metric = self.evaluate.primary_metric
        if metric is not None and metric not in allowed:
            problems.append(f"evaluate.primary_metric: '{metric}' is not one of {allowed}")
        for name in self.promote.floors:
            if name not in allowed:
                problems.append(f"promote.floors.{name}: not one of {allowed}")
        return problems

    def _split_problems(self) -> list[str]:
        """Every split constraint, checked before any data is read."""
        split, table = self.features.split, self.data.table
        problems = []
        if split.method == "time" and not table.time_column:
            problems.append(
                "features.split.method: 'time' needs data.schema.time_column, which is not set "
                "(declare the datetime column, or use method 'order' for rows already in time "
                "order)"
            )
        if split.method == "stratified" and table.task != "classification":
            problems.append(
                "features.split.method: 'stratified' needs a classification task "
                "(data.schema.task is 'regression': use 'random', 'order' or 'time')"
            )
        if split.group_column and split.group_column not in table.kinds:
            problems.append(
                f"features.split.group_column: '{split.group_column}' is not among "
                "data.schema.columns"
            )
        if split.val_size + split.test_size >= 0.8:
            problems.append(
                "features.split: val_size + test_size must leave at least 20 % of rows to train"
            )
        return problems

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
