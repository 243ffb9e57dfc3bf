"""Typed configuration: ``params.yaml`` loaded once into pydantic models.

Every model forbids unknown keys, so a typo fails at start with the key's full path.
Relative paths are resolved against the folder that holds ``params.yaml`` (the project root).
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loopml.exceptions import ConfigError

ColumnKind = Literal["numeric", "integer", "categorical", "boolean", "datetime"]
Severity = Literal["blocking", "warning", "off"]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


# --------------------------------------------------------------------------- project, paths
class ProjectConfig(_Model):
    name: str = Field("loopml", min_length=1)
    seed: int = Field(
        42, ge=0, description="Global seed; every stage derives its randomness from it."
    )


class PathsConfig(_Model):
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


class TrackingConfig(_Model):
    uri: str = Field(
        "sqlite:///mlflow.db", description="MLflow tracking URI; MLFLOW_TRACKING_URI wins."
    )
    artifact_location: str = "mlartifacts"
    experiment: str = "loopml"
    ui_url: str = Field("http://127.0.0.1:5000", description="Where links to runs point.")


# --------------------------------------------------------------------------- data
class DriftConfig(_Model):
    """Knobs of the bundled generator that the monitoring work uses.

    ``covariate`` maps a feature to a shift strength: numeric features move their location by
    ``strength`` standard deviations; categorical features move ``strength`` of their mass to
    the reversed frequency order. ``concept`` in [0, 1] blends the label relation toward a
    different one (documented in :mod:`loopml.datagen`).
    """

    covariate: dict[str, float] = Field(default_factory=dict)
    concept: Fraction = 0.0


class GeneratorSource(_Model):
    n_rows: int = Field(20_000, gt=0, le=50_000_000)
    seed: int = Field(42, ge=0)
    start: str = "2024-01-01"
    days: float = Field(30.0, gt=0)
    id_start: int = Field(1, ge=0)
    drift: DriftConfig = DriftConfig()


class CsvOptions(_Model):
    sep: str = ","
    header: bool = True
    names: list[str] | None = None
    na_values: list[str] = Field(default_factory=list)
    skipinitialspace: bool = False
    encoding: str = "utf-8"


class FileSource(_Model):
    path: Path
    pattern: str = Field("*", description="Glob used when path is a folder.")
    format: Literal["auto", "csv", "parquet"] = "auto"
    csv: CsvOptions = CsvOptions()


class UrlSource(_Model):
    url: str
    format: Literal["csv", "parquet"] = "csv"
    csv: CsvOptions = CsvOptions()
    timeout_s: float = Field(30.0, gt=0)
    retries: int = Field(2, ge=0)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v


class SqlSource(_Model):
    url: str = Field(description="SQLAlchemy URL; ${ENV_VAR} references are expanded at read time.")
    query: str = Field(min_length=1)


class SourceConfig(_Model):
    kind: Literal["generator", "file", "url", "sql"] = "generator"
    generator: GeneratorSource = GeneratorSource()
    file: FileSource | None = None
    url: UrlSource | None = None
    sql: SqlSource | None = None

    @model_validator(mode="after")
    def _chosen_source_present(self) -> SourceConfig:
        if self.kind != "generator" and getattr(self, self.kind) is None:
            raise ValueError(f"kind is '{self.kind}' but the '{self.kind}' section is missing")
        return self


class SchemaConfig(_Model):
    columns: dict[str, ColumnKind] = Field(min_length=1)
    target: str
    task: Literal["classification", "regression"] = "classification"
    id_column: str | None = None
    time_column: str | None = None
    drop_columns: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> SchemaConfig:
        problems = []
        for role in ("target", "id_column", "time_column"):
            name = getattr(self, role)
            if name is not None and name not in self.columns:
                problems.append(f"{role} '{name}' is not among columns")
        if self.time_column and self.columns.get(self.time_column) != "datetime":
            problems.append(f"time_column '{self.time_column}' must have kind datetime")
        for name in self.drop_columns:
            if name not in self.columns:
                problems.append(f"drop_columns entry '{name}' is not among columns")
        if self.target in self.drop_columns:
            problems.append(f"target '{self.target}' cannot be dropped")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def feature_columns(self) -> list[str]:
        skip = {self.target, self.id_column, *self.drop_columns}
        return [c for c in self.columns if c not in skip]

    def features_of(self, kind: ColumnKind) -> list[str]:
        return [c for c in self.feature_columns if self.columns[c] == kind]


class CleanConfig(_Model):
    rstrip: dict[str, str] = Field(
        default_factory=dict, description="Per column, characters to strip from the right."
    )
    strip_whitespace: bool = True


class VersioningConfig(_Model):
    enabled: bool = True
    push: bool = True
    remote: str | None = Field(None, description="DVC remote name; None uses the default remote.")


class DataConfig(_Model):
    source: SourceConfig = SourceConfig()
    schema_: SchemaConfig = Field(alias="schema")
    clean: CleanConfig = CleanConfig()
    versioning: VersioningConfig = VersioningConfig()

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- validate
class SeverityConfig(_Model):
    columns: Severity = "blocking"
    types: Severity = "blocking"
    nulls: Severity = "blocking"
    ranges: Severity = "warning"
    domains: Severity = "warning"
    unique_id: Severity = "blocking"
    row_count: Severity = "blocking"
    target: Severity = "blocking"
    class_balance: Severity = "blocking"


class ValidateConfig(_Model):
    suite_name: str = "loopml"
    on_missing_suite: Literal["profile", "error"] = "profile"
    severity: SeverityConfig = SeverityConfig()
    null_fraction_slack: Fraction = 0.05
    range_margin: float = Field(
        0.5, ge=0.0, description="Share of the profiled range added on each side."
    )
    domain_max_values: int = Field(200, gt=0)
    min_rows: int = Field(100, ge=1)
    max_rows: int | None = Field(None, ge=1)
    class_share_slack: Fraction = 0.1
    data_docs: bool = True


# --------------------------------------------------------------------------- features
class SplitConfig(_Model):
    method: Literal["auto", "time", "stratified", "random"] = "auto"
    val_size: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.15
    test_size: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.15


class FeaturesConfig(_Model):
    split: SplitConfig = SplitConfig()
    numeric_impute: Literal["median", "mean"] = "median"
    clip_quantiles: tuple[Fraction, Fraction] = (0.001, 0.999)
    scale: Literal["standard", "robust", "none"] = "standard"
    categorical_min_frequency: Fraction = 0.005
    categorical_max_categories: int | None = Field(50, gt=1)
    datetime_parts: list[Literal["hour", "weekday", "month", "day", "year"]] = Field(
        default_factory=lambda: ["hour", "weekday", "month"]
    )

    @field_validator("clip_quantiles")
    @classmethod
    def _ordered(cls, v: tuple[float, float]) -> tuple[float, float]:
        if not v[0] < v[1]:
            raise ValueError("lower quantile must be below upper quantile")
        return v


# --------------------------------------------------------------------------- train
CandidateKind = Literal["dummy", "linear", "hist_gradient_boosting", "lightning"]


class SearchConfig(_Model):
    """Optional hyperparameter search for one candidate; every trial is a nested MLflow run."""

    method: Literal["grid", "random"] = "random"
    n_trials: int = Field(4, ge=1, le=200, description="Trials drawn when method is random.")
    space: dict[str, list[Any]] = Field(min_length=1)

    @field_validator("space")
    @classmethod
    def _non_empty(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        empty = [k for k, vals in v.items() if not vals]
        if empty:
            raise ValueError(f"no values to search for {empty}")
        return v


class CandidateConfig(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: CandidateKind
    params: dict[str, Any] = Field(default_factory=dict)
    search: SearchConfig | None = None
    enabled: bool = True


class LightningConfig(_Model):
    """Trainer settings of the Lightning candidate. GPU settings apply only where CUDA is found."""

    hidden_sizes: list[Annotated[int, Field(gt=0)]] = Field(default_factory=lambda: [128, 64])
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    batch_norm: bool = True
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    batch_size: int = Field(512, gt=0)
    max_epochs: int = Field(30, gt=0)
    patience: int = Field(4, gt=0, description="Early stopping on the validation loss.")
    scheduler_factor: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.5
    scheduler_patience: int = Field(2, ge=0)
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    devices: int | Literal["auto"] = "auto"
    precision_cpu: str = "32-true"
    precision_gpu: str = "bf16-mixed"
    pin_memory: bool | Literal["auto"] = "auto"
    num_workers: int = Field(0, ge=0)
    deterministic: bool = True


class TrainConfig(_Model):
    candidates: list[CandidateConfig] = Field(min_length=1)
    lightning: LightningConfig = LightningConfig()

    @field_validator("candidates")
    @classmethod
    def _unique_names(cls, v: list[CandidateConfig]) -> list[CandidateConfig]:
        names = [c.name for c in v]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"candidate names must be unique, repeated: {dupes}")
        if not any(c.enabled for c in v):
            raise ValueError("at least one candidate must be enabled")
        return v


# --------------------------------------------------------------------------- evaluate
LOWER_IS_BETTER = {"rmse", "mae", "log_loss"}
CLASSIFICATION_METRICS = {"accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "log_loss"}
REGRESSION_METRICS = {"rmse", "mae", "r2"}


class EvaluateConfig(_Model):
    primary_metric: str | None = Field(
        None, description="Selects and promotes models; default roc_auc (classification), rmse."
    )
    bootstrap_resamples: int = Field(200, ge=10, le=10_000)
    confidence: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.95
    permutation_repeats: int = Field(3, ge=1)
    permutation_max_rows: int = Field(2000, ge=100)
    worst_errors: int = Field(20, ge=1)
    plots: bool = True


class PromoteConfig(_Model):
    model_name: str = Field("loopml-model", min_length=1)
    floors: dict[str, float] = Field(
        default_factory=dict, description="Absolute floors (ceilings for lower-is-better metrics)."
    )
    min_improvement: float = Field(0.0, ge=0.0, description="Margin over the champion.")
    beyond_champion_ci: bool = False
    servability_rows: int = Field(50, ge=1)


class MonitorConfig(_Model):
    experiment: str = "loopml-monitoring"
    current: Literal["log", "source"] = Field(
        "log", description="Production data: the serving prediction log, or a new source batch."
    )
    window_rows: int = Field(5000, ge=10, description="Newest prediction-log rows compared.")
    min_rows: int = Field(200, ge=10, description="Fewer current rows: no verdict.")
    sample_rows: int = Field(
        20_000, ge=100, description="Reference, current and labelled rows are sampled to this."
    )
    drift_share_threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.15
    decay_threshold: float = Field(0.05, ge=0.0, description="Drop of the primary metric.")
    min_labelled_rows: int = Field(100, ge=10)
    cooldown_minutes: float = Field(60.0, ge=0.0)
    trigger: bool = True
    training_deployment: str = "training/training"
    webhook_url: str | None = None
    schedule_cron: str = "*/30 * * * *"


class ServeConfig(_Model):
    host: str = "127.0.0.1"
    port: int = Field(8000, gt=0, lt=65536)
    alias: str = "champion"
    poll_seconds: float = Field(2.0, gt=0)
    max_wait_ms: float = Field(2.0, ge=0, description="Micro-batching window.")
    max_batch_rows: int = Field(2048, gt=0)
    workers: int = Field(1, gt=0, le=64, description="Server processes (one per core).")
    inline_rows: int = Field(
        256,
        ge=0,
        description="Micro-batches up to this many rows are predicted on the event loop "
        "(compiled fast path only); larger ones in a worker thread.",
    )
    token_env: str = Field("LOOPML_API_TOKEN", description="Bearer token read from this variable.")


class ScoreConfig(_Model):
    """Batch scoring: the registry's model predicts a batch of rows from any source."""

    alias: str = "champion"
    source: SourceConfig = SourceConfig(generator=GeneratorSource(n_rows=5000, seed=2024))
    chunk_rows: int = Field(100_000, gt=0, description="Rows predicted at a time.")
    log_predictions: bool = Field(True, description="Append scored rows to the prediction log.")
    schedule_cron: str | None = Field(None, description="Scoring schedule; null: on demand.")


class DeployConfig(_Model):
    training_cron: str | None = Field("0 3 * * *", description="Retraining schedule; null: none.")
    timezone: str = "UTC"


# --------------------------------------------------------------------------- root
class Params(_Model):
    project: ProjectConfig = ProjectConfig()
    paths: PathsConfig = PathsConfig()
    tracking: TrackingConfig = TrackingConfig()
    data: DataConfig
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
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

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _metrics_fit_the_task(self) -> Params:
        allowed = (
            CLASSIFICATION_METRICS
            if self.data.schema_.task == "classification"
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
        return "roc_auc" if self.data.schema_.task == "classification" else "rmse"

    def path(self, key: str) -> Path:
        """Absolute path of ``paths.<key>``."""
        p = getattr(self.paths, key)
        return p if p.is_absolute() else (self.root / p)

    def resolve(self, p: Path | str) -> Path:
        p = Path(p)
        return p if p.is_absolute() else (self.root / p)

    def section_dict(self, name: str) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)[name]

    def digest(self) -> str:
        """A stable hash of every parameter (recorded on runs and model versions)."""
        blob = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- loading
def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``override``, recursively; neither input is modified."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_dotted(assignments: list[str]) -> dict[str, Any]:
    """Turn ``["train.max_epochs=5", "data.source.kind=file"]`` into a nested dict.

    Values are parsed as YAML, so ``5`` is an int, ``true`` a bool and ``[a, b]`` a list.
    """
    out: dict[str, Any] = {}
    for item in assignments:
        if "=" not in item:
            raise ConfigError([f"override '{item}' is not of the form key.path=value"], "overrides")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError([f"override '{item}' has an empty key"], "overrides")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def _known_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model class that owns the field at ``loc`` (for 'did you mean')."""
    model: type[BaseModel] | None = Params
    for part in loc[:-1]:
        if model is None or not isinstance(part, str):
            return None
        field = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        model = next(
            (c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None
        )
    return model


def _format_errors(err: ValidationError) -> list[str]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        path = ".".join(str(p) for p in loc) or "<root>"
        if e["type"] == "extra_forbidden":
            msg = f"{path}: unknown key"
            owner = _model_at(loc)
            if owner is not None:
                close = difflib.get_close_matches(str(loc[-1]), _known_keys(owner), n=1)
                if close:
                    msg += f" (did you mean '{close[0]}'?)"
        elif e["type"] == "missing":
            msg = f"{path}: required key is missing"
        else:
            got = e.get("input")
            shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
            msg = f"{path}: {e['msg']} (got {shown})"
        problems.append(msg)
    return problems


def params_from_dict(
    raw: Mapping[str, Any], *, root: Path = Path("."), source: str = "params.yaml"
) -> Params:
    if not isinstance(raw, Mapping):
        raise ConfigError([f"top level must be a mapping, got {type(raw).__name__}"], source)
    try:
        return Params.model_validate({**raw, "root": root})
    except ValidationError as err:
        raise ConfigError(_format_errors(err), source) from None


def load_params(
    path: str | Path = "params.yaml",
    overrides: Mapping[str, Any] | None = None,
) -> Params:
    """Load ``params.yaml``, apply nested ``overrides`` (a Prefect flow parameter), validate."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError([f"file not found: {path}"], str(path))
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {exc}"], str(path)) from None
    if overrides:
        raw = deep_merge(raw, overrides)
    return params_from_dict(raw, root=path.parent, source=str(path))
