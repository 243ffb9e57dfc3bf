"""Shared pieces of the configuration models."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

ColumnKind = Literal["numeric", "integer", "categorical", "boolean", "datetime"]
Severity = Literal["blocking", "warning", "off"]
Fraction = Annotated[float, Field(ge=0.0, le=1.0)]


class Section(BaseModel):
    """A section of ``params.yaml``: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, populate_by_name=True
    )
