"""The ``data`` section: where batches come from, what their columns are, how they are versioned."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from loopml.config.base import ColumnKind, Fraction, Section


class DriftConfig(Section):
    """Knobs of the bundled generator that the monitoring work uses.

    ``covariate`` maps a feature to a shift strength: numeric features move their location by
    ``strength`` standard deviations; categorical features move ``strength`` of their mass to
    the reversed frequency order. ``concept`` in [0, 1] blends the label relation toward a
    different one (documented in :mod:`loopml.datagen`).
    """

    covariate: dict[str, float] = Field(default_factory=dict)
    concept: Fraction = 0.0


class GeneratorSource(Section):
    n_rows: int = Field(20_000, gt=0, le=50_000_000, description="Rows in the batch.")
    seed: int = Field(42, ge=0)
    start: str = Field("2024-01-01", description="First event day.")
    days: float = Field(30.0, gt=0, description="Days the batch spans.")
    id_start: int = Field(1, ge=0, description="First customer id.")
    drift: DriftConfig = DriftConfig()


class CsvOptions(Section):
    sep: str = ","
    header: bool = True
    names: list[str] | None = None
    na_values: list[str] = Field(default_factory=list)
    skipinitialspace: bool = False
    encoding: str = "utf-8"


class FileSource(Section):
    path: Path
    pattern: str = Field("*", description="Glob used when path is a folder.")
    format: Literal["auto", "csv", "parquet"] = "auto"
    csv: CsvOptions = CsvOptions()


class UrlSource(Section):
    """A file over HTTP(S). Transient failures are retried by the collect task."""

    url: str
    format: Literal["csv", "parquet"] = "csv"
    csv: CsvOptions = CsvOptions()
    timeout_s: float = Field(30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v


class SqlSource(Section):
    url: str = Field(description="SQLAlchemy URL; ${ENV_VAR} references are expanded at read time.")
    query: str = Field(min_length=1)


SourceKind = Literal["generator", "file", "url", "sql"]


class SourceConfig(Section):
    kind: SourceKind = "generator"
    generator: GeneratorSource = GeneratorSource()
    file: FileSource | None = None
    url: UrlSource | None = None
    sql: SqlSource | None = None

    @model_validator(mode="after")
    def _chosen_source_present(self) -> SourceConfig:
        if self.kind != "generator" and getattr(self, self.kind) is None:
            raise ValueError(f"kind is '{self.kind}' but the '{self.kind}' section is missing")
        return self


class SchemaConfig(Section):
    """``data.schema``: the declared columns, the target and the roles of special columns."""

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

    @property
    def input_kinds(self) -> dict[str, ColumnKind]:
        """The model's raw input columns and their kinds."""
        return {c: self.columns[c] for c in self.feature_columns}


class CleanConfig(Section):
    rstrip: dict[str, str] = Field(
        default_factory=dict, description="Per column, characters to strip from the right."
    )
    strip_whitespace: bool = True


class VersioningConfig(Section):
    enabled: bool = True
    push: bool = True
    remote: str | None = Field(None, description="DVC remote name; None uses the default remote.")


class DataConfig(Section):
    """``data``. The schema is the attribute ``table`` (``schema`` is a pydantic method name)."""

    source: SourceConfig = SourceConfig()
    table: SchemaConfig = Field(alias="schema")
    clean: CleanConfig = CleanConfig()
    versioning: VersioningConfig = VersioningConfig()
