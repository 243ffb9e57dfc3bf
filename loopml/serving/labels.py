"""Request bodies of the model server's JSON endpoints, as typed models (FastAPI validates them
and publishes them in the OpenAPI schema), and the checks their types cannot state."""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from loopml.exceptions import InputError

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class LabelItem(BaseModel):
    """The true label of one logged prediction."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=128, description="From the /predict answer.")
    row: StrictInt = Field(0, ge=0, le=10_000_000, description="Row of that request (0-based).")
    label: StrictBool | StrictInt | FiniteFloat | str = Field(description="The true value.")


class LabelsBody(BaseModel):
    """``POST /labels``."""

    model_config = ConfigDict(extra="forbid")

    labels: list[LabelItem] = Field(min_length=1)


PredictBody = dict[str, Any] | list[dict[str, Any]]
"""``POST /predict``: one record, a list of records, or ``{"records": [...]}``."""


def parse_labels(body: LabelsBody, max_records: int, max_string: int) -> list[tuple[str, int, str]]:
    """``(request_id, row, label as JSON)`` per label, or :class:`InputError` naming the label."""
    if len(body.labels) > max_records:
        raise InputError(
            f"{len(body.labels):,} labels in one request; at most {max_records:,} "
            "(serve.max_records)"
        )
    out = []
    for i, item in enumerate(body.labels):
        if isinstance(item.label, str) and len(item.label) > max_string:
            raise InputError(
                f"label {i}: a string of {len(item.label):,} characters; at most {max_string:,} "
                "(serve.max_string_length)"
            )
        out.append((item.request_id, item.row, json.dumps(item.label)))
    return out
