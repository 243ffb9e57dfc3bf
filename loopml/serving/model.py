"""The served model: a registry version with its feature transform compiled for the fast path."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.registry import LoadedVersion, load_alias
from loopml.serving.fastpath import compile_features
from loopml.serving.inputs import Rows, rows_frame

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from loopml.pyfunc import LoopmlModel

Compiled = Callable[[Rows], np.ndarray]


@dataclass(frozen=True)
class ModelInfo:
    """What ``GET /model`` answers."""

    name: str
    version: str
    alias: str
    run_id: str
    data_version: str | None
    git_commit: str | None
    metrics: dict[str, float]
    task: str
    inputs: dict[str, str]
    fast_path: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServedModel:
    version: str
    model: LoopmlModel
    required: frozenset[str]
    info: ModelInfo
    compiled: Compiled | None = None

    def output(self, rows: Rows) -> np.ndarray:
        """Class probabilities (or predictions) for checked rows."""
        if self.compiled is None:
            return self.model.predict_output(rows_frame(rows, self.model.input_kinds))
        x = self.compiled(rows)
        if self.model.task == "classification":
            return self.model.predictor.predict_proba(x)
        return np.asarray(self.model.predictor.predict(x), dtype=float)


def serve_version(loaded: LoadedVersion, alias: str) -> ServedModel:
    """A loaded version ready to serve: its info, and the compiled fast path where it agrees."""
    compiled = compile_features(loaded.model)
    info = ModelInfo(
        name=loaded.name,
        version=loaded.version,
        alias=alias,
        run_id=loaded.run_id,
        data_version=loaded.data_version,
        git_commit=loaded.tags.get("loopml.git_commit"),
        metrics=loaded.metrics,
        task=loaded.model.task,
        inputs=dict(loaded.model.input_kinds),
        fast_path=compiled is not None,
    )
    return ServedModel(
        version=loaded.version,
        model=loaded.model,
        required=loaded.required,
        info=info,
        compiled=compiled,
    )


def load_served(client: MlflowClient, name: str, alias: str) -> ServedModel:
    return serve_version(load_alias(client, name, alias, verify=True), alias)
