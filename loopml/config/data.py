"""The ``data`` section: where batches come from, what their columns are, how they are versioned."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from loopml.config.base import ColumnKind, Fraction, Section
from loopml.derive import Expression, parse
from loopml.exceptions import ConfigError
from loopml.secrets import refuse_literal_secret


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
        if not v.startswith(("http://", "https://", "${")):
            raise ValueError("must start with http:// or https://")
        return refuse_literal_secret(v) or v


class SqlSource(Section):
    url: str = Field(description="SQLAlchemy URL; ${ENV_VAR} references are expanded at read time.")
    query: str = Field(min_length=1)

    _no_literal_secret = field_validator("url")(refuse_literal_secret)


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
            raise ValueError(f"{self.kind}: required when kind is '{self.kind}'")
        return self


class DerivedColumn(Section):
    """A column computed from others (:mod:`loopml.derive`), at collect and by the served model."""

    expr: str = Field(min_length=1, description='e.g. "minutes(dropoff_time - pickup_time)"')
    type: ColumnKind | None = Field(None, description="Its kind; default: from the expression.")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        return {"expr": value} if isinstance(value, str) else value


class ColumnBounds(Section):
    """Hard bounds of a numeric column: a value outside them is impossible, not unusual."""

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ColumnBounds:
        if self.min is None and self.max is None:
            raise ValueError("set min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


def _split_column_specs(value: object) -> object:
    """``columns: {age: {type: numeric, min: 0, max: 130}}`` -> the kind in ``columns`` and the
    bounds in ``bounds`` (a column may also be just ``age: numeric``)."""
    if not isinstance(value, dict) or not isinstance(value.get("columns"), dict):
        return value
    columns, bounds = {}, dict(value.get("bounds") or {})
    for name, spec in value["columns"].items():
        if isinstance(spec, dict):
            spec = dict(spec)
            columns[name] = spec.pop("type", None)
            if spec:
                bounds[name] = spec
        else:
            columns[name] = spec
    return {**value, "columns": columns, "bounds": bounds}


class SchemaConfig(Section):
    """``data.schema``: the declared columns, derived columns, the target and the roles of
    special columns."""

    columns: dict[str, ColumnKind] = Field(min_length=1)
    bounds: dict[str, ColumnBounds] = Field(
        default_factory=dict,
        description="Hard bounds per numeric column, from `columns: {c: {type, min, max}}`.",
    )
    derived: dict[str, DerivedColumn] = Field(
        default_factory=dict, description="Columns computed from the declared ones, in order."
    )
    target: str
    task: Literal["classification", "regression"] = "classification"
    id_column: str | None = None
    time_column: str | None = None
    drop_columns: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _column_specs(cls, value: object) -> object:
        return _split_column_specs(value)

    @model_validator(mode="after")
    def _consistent(self) -> SchemaConfig:
        problems = [
            f"derived.{n}: also declared in columns" for n in self.derived if n in self.columns
        ]
        problems += [
            f"columns.{n}: min/max need a numeric or integer column"
            + (" (not declared)" if n not in self.columns else f" (declared {self.columns[n]})")
            for n in self.bounds
            if self.columns.get(n) not in ("numeric", "integer")
        ]
        try:
            self.expressions()
        except ConfigError as exc:
            problems.extend(exc.problems)
        if problems:
            raise ValueError("; ".join(problems))
        kinds = self.kinds
        for role in ("target", "id_column", "time_column"):
            name = getattr(self, role)
            if name is not None and name not in kinds:
                problems.append(f"{role}: '{name}' is not among columns or derived columns")
        if self.time_column and kinds.get(self.time_column) != "datetime":
            problems.append(f"time_column: '{self.time_column}' must have kind datetime")
        for name in self.drop_columns:
            if name not in kinds:
                problems.append(f"drop_columns: '{name}' is not among columns")
        if self.target in self.drop_columns:
            problems.append(f"drop_columns: the target '{self.target}' cannot be dropped")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def expressions(self) -> dict[str, Expression]:
        """The derived columns, parsed and checked (each may read the ones before it)."""
        known = set(self.columns)
        out = {}
        for name, spec in self.derived.items():
            out[name] = parse(spec.expr, f"derived.{name}", known)
            known.add(name)
        return out

    @property
    def kinds(self) -> dict[str, ColumnKind]:
        """Every column of a snapshot: the declared ones, then the derived ones."""
        expressions = self.expressions() if self.derived else {}
        derived = {name: spec.type or expressions[name].kind for name, spec in self.derived.items()}
        return {**self.columns, **derived}  # type: ignore[dict-item]

    @property
    def feature_columns(self) -> list[str]:
        skip = {self.target, self.id_column, *self.drop_columns}
        return [c for c in self.kinds if c not in skip]

    def features_of(self, kind: ColumnKind) -> list[str]:
        kinds = self.kinds
        return [c for c in self.feature_columns if kinds[c] == kind]

    def _needed(self) -> set[str]:
        """Every column the features need: themselves and what derived ones read."""
        needed = set(self.feature_columns)
        expressions = self.expressions()
        for name in reversed(list(expressions)):
            if name in needed:
                needed |= set(expressions[name].columns)
        return needed

    @property
    def input_kinds(self) -> dict[str, ColumnKind]:
        """The model's raw input columns and their kinds: declared features, and the declared
        columns that derived features read (the served model derives the rest itself)."""
        needed = self._needed()
        return {c: k for c, k in self.columns.items() if c in needed}

    @property
    def feature_derivations(self) -> dict[str, tuple[str, ColumnKind]]:
        """The derived columns the model computes from its inputs: name -> (expression, kind)."""
        needed, kinds = self._needed(), self.kinds
        return {n: (s.expr, kinds[n]) for n, s in self.derived.items() if n in needed}

    @property
    def text_columns(self) -> list[str]:
        """The declared categorical columns: read as text from CSV, not guessed per chunk."""
        return [name for name, kind in self.columns.items() if kind == "categorical"]

    @property
    def derived_kinds(self) -> dict[str, ColumnKind]:
        kinds = self.kinds
        return {name: kinds[name] for name in self.derived}


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
    chunk_rows: int = Field(
        250_000,
        gt=0,
        description="Rows collect reads, conforms and writes at a time (bounds its memory).",
    )
