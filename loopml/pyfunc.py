"""The served model: the fitted feature transformer and the estimator as one MLflow pyfunc.

It takes raw rows (the columns of ``data.schema``, missing values and unseen categories
allowed) and returns a frame with ``prediction`` (and class probabilities for classifiers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import mlflow.pyfunc
import numpy as np
import pandas as pd

from loopml.schema import conform_frame

if TYPE_CHECKING:
    from sklearn.compose import ColumnTransformer

    from loopml.modeldata import ModelData
    from loopml.models import FitResult, Predictor


class LoopmlModel(mlflow.pyfunc.PythonModel):
    def __init__(
        self,
        transformer: ColumnTransformer,
        predictor: Predictor,
        task: str,
        input_kinds: dict[str, str],
        classes: list[Any] | None = None,
        derived: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        self.transformer = transformer
        self.predictor = predictor
        self.task = task
        self.input_kinds = dict(input_kinds)
        self.classes = list(classes) if classes is not None else None
        self.derived = dict(derived or {})
        """Derived feature columns: name -> (expression, kind), computed from the inputs."""

    def features(self, frame: pd.DataFrame) -> np.ndarray:
        rows = conform_frame(frame, self.input_kinds)
        for col, kind in self.input_kinds.items():
            if col not in rows.columns:
                rows[col] = np.nan
            elif kind == "categorical":
                rows[col] = rows[col].astype(object).where(rows[col].notna(), None)
        rows = rows[list(self.input_kinds)]
        if self.derived:
            rows = self._derive(rows)
        return np.asarray(self.transformer.transform(rows), dtype=np.float32)

    def _derive(self, rows: pd.DataFrame) -> pd.DataFrame:
        from loopml.derive import derive_columns, parse

        known = set(rows.columns) | set(self.derived)
        expressions = {name: parse(expr, name, known) for name, (expr, _) in self.derived.items()}
        kinds = {name: kind for name, (_, kind) in self.derived.items()}
        out = derive_columns(rows, expressions, kinds)
        for name, kind in kinds.items():
            if kind == "categorical":
                out[name] = out[name].astype(object).where(out[name].notna(), None)
        return out

    def predict_output(self, frame: pd.DataFrame) -> np.ndarray:
        """Probabilities (classification) or predictions (regression) for raw rows."""
        return self.output_of(self.features(frame))

    def output_of(self, x: np.ndarray) -> np.ndarray:
        """Probabilities (classification) or predictions (regression) for feature rows."""
        if self.task == "classification":
            return self.predictor.predict_proba(x)
        return np.asarray(self.predictor.predict(x), dtype=float)

    def label(self, output: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Model output to predictions (class labels or values) and probability columns."""
        if self.task == "regression":
            return np.asarray(output, dtype=float), {}
        assert self.classes is not None
        labels = np.asarray(self.classes, dtype=object)[output.argmax(axis=1)]
        if len(self.classes) == 2:
            return labels, {"probability": output[:, 1]}
        return labels, {f"probability_{cls}": output[:, i] for i, cls in enumerate(self.classes)}

    def predict(
        self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None
    ) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        labels, probs = self.label(self.predict_output(frame))
        return pd.DataFrame({"prediction": labels, **probs})


def bundle(fit: FitResult, data: ModelData) -> LoopmlModel:
    """The served model of a fitted candidate: its data's transformer and its estimator."""
    return LoopmlModel(
        transformer=data.encodings[fit.encoding].transformer,
        predictor=fit.predictor,
        task=data.task,
        input_kinds=data.input_kinds,
        classes=data.classes,
        derived=data.derived,
    )


def signature_example(
    frame: pd.DataFrame, input_kinds: dict[str, str], rows: int = 5
) -> pd.DataFrame:
    """Raw rows typed for the model signature.

    Numeric columns are doubles (missing values allowed). Integer columns stay integers (MLflow
    refuses int64 input for a double column) unless ``frame`` shows them with missing values.
    """
    out = frame[list(input_kinds)].head(rows).copy()
    for col, kind in input_kinds.items():
        if kind == "numeric" or (kind == "integer" and frame[col].isna().any()):
            out[col] = out[col].astype("float64")
        elif kind == "integer":
            out[col] = out[col].astype("int64")
        elif kind == "categorical":
            out[col] = out[col].astype(object)
    return out
