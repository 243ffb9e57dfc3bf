"""Typed configuration: ``params.yaml`` loaded once into pydantic models.

Every model forbids unknown keys, so a typo fails at start with the key's full path. Relative
paths are resolved against the folder that holds ``params.yaml`` (the project root).
"""

from loopml.config.base import ColumnKind, Fraction, Section, Severity
from loopml.config.data import (
    CleanConfig,
    CsvOptions,
    DataConfig,
    DriftConfig,
    FileSource,
    GeneratorSource,
    SchemaConfig,
    SourceConfig,
    SqlSource,
    UrlSource,
    VersioningConfig,
)
from loopml.config.loading import deep_merge, load_params, params_from_dict, parse_dotted
from loopml.config.operations import DeployConfig, MonitorConfig, ScoreConfig, ServeConfig
from loopml.config.params import Params, PathsConfig, ProjectConfig, TrackingConfig
from loopml.config.pipeline import (
    CLASSIFICATION_METRICS,
    LOWER_IS_BETTER,
    REGRESSION_METRICS,
    CandidateConfig,
    EvaluateConfig,
    ExecutorConfig,
    FeaturesConfig,
    LightningConfig,
    PromoteConfig,
    SearchConfig,
    SeverityConfig,
    SplitConfig,
    TrainConfig,
    ValidateConfig,
)

__all__ = [
    "CLASSIFICATION_METRICS",
    "LOWER_IS_BETTER",
    "REGRESSION_METRICS",
    "CandidateConfig",
    "CleanConfig",
    "ColumnKind",
    "CsvOptions",
    "DataConfig",
    "DeployConfig",
    "DriftConfig",
    "EvaluateConfig",
    "ExecutorConfig",
    "FeaturesConfig",
    "FileSource",
    "Fraction",
    "GeneratorSource",
    "LightningConfig",
    "MonitorConfig",
    "Params",
    "PathsConfig",
    "ProjectConfig",
    "PromoteConfig",
    "SchemaConfig",
    "ScoreConfig",
    "SearchConfig",
    "Section",
    "ServeConfig",
    "Severity",
    "SeverityConfig",
    "SourceConfig",
    "SplitConfig",
    "SqlSource",
    "TrackingConfig",
    "TrainConfig",
    "UrlSource",
    "ValidateConfig",
    "VersioningConfig",
    "deep_merge",
    "load_params",
    "params_from_dict",
    "parse_dotted",
]
