"""Drift and decay: an Evidently report (``DataDriftPreset``, with ``DataSummaryPreset`` when
``monitor.data_summary`` is on) of the current data against the reference, both sampled to
``monitor.sample_rows``, and the champion's primary metric on the labelled current rows against
its test score."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loopml.config import LOWER_IS_BETTER, MonitorConfig, SchemaConfig
from loopml.metrics import metrics_for
from loopml.pyfunc import LoopmlModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ColumnDrift:
    score: float
    method: str
    threshold: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    rows_reference: int
    rows_current: int
    drift_share: float
    drifted_columns: list[str]
    column_scores: dict[str, ColumnDrift]
    labelled_rows: int = 0
    current_metric: float | None = None
    reference_metric: float | None = None
    decay: float | None = None
    html: str = field(default="", repr=False)

    def drifted(self, threshold: float) -> bool:
        return self.drift_share >= threshold

    def decayed(self, threshold: float) -> bool:
        return self.decay is not None and self.decay >= threshold


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame if len(frame) <= n else frame.sample(n, random_state=seed)


def _column_drift(config: dict[str, Any], value: float) -> ColumnDrift:
    threshold = float(config.get("threshold") or 0.0)
    method = str(config.get("method", ""))
    # p-value tests drift when below the threshold; distances when above it.
    is_test = "p_value" in method or "test" in method.lower()
    drifted = value < threshold if is_test else value >= threshold
    return ColumnDrift(score=value, method=method, threshold=threshold, drifted=drifted)


def _evidently(
    ref: pd.DataFrame,
    cur: pd.DataFrame,
    numeric: list[str],
    categorical: list[str],
    cfg: MonitorConfig,
) -> tuple[float, dict[str, ColumnDrift], str]:
    """(drift share, per-column drift, HTML report) from Evidently."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset, DataSummaryPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    presets: list[Any] = [DataDriftPreset(drift_share=cfg.drift_share_threshold)]
    if cfg.data_summary:  # column statistics in the HTML: about as long again as the drift preset
        presets.append(DataSummaryPreset())
    report = Report(presets)
    snapshot = report.run(
        current_data=Dataset.from_pandas(cur, data_definition=definition),
        reference_data=Dataset.from_pandas(ref, data_definition=definition),
    )
    scores: dict[str, ColumnDrift] = {}
    share = 0.0
    for m in snapshot.dict()["metrics"]:
        config = m.get("config", {})
        kind = config.get("type", "")
        if kind.endswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
        elif kind.endswith("ValueDrift"):
            scores[config["column"]] = _column_drift(config, float(m["value"]))
    with tempfile.TemporaryDirectory() as tmp:
        html_path = Path(tmp) / "report.html"
        snapshot.save_html(str(html_path))
        html = html_path.read_text()
    return share, scores, html


def _comparable(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    out = frame[numeric + categorical].copy()
    for c in categorical:
        out[c] = out[c].astype(object).where(out[c].notna(), None).astype(str)
    for c in numeric:
        out[c] = pd.to_numeric(out[c], errors="coerce").astype(float)
    return out


def _labelled_metric(
    labelled: pd.DataFrame, model: LoopmlModel, schema: SchemaConfig, metric: str
) -> float | None:
    """The model's ``metric`` on labelled rows (rows of unknown classes left out)."""
    output = model.predict_output(labelled[list(model.input_kinds)])
    if schema.task == "classification":
        index = {str(c): i for i, c in enumerate(model.classes or [])}
        y = labelled[schema.target].map(lambda v: index.get(str(v), -1)).to_numpy()
        keep = y >= 0
        values = metrics_for(schema.task, y[keep], output[keep]) if keep.any() else {}
    else:
        values = metrics_for(schema.task, labelled[schema.target].to_numpy(dtype=float), output)
    return values.get(metric)


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: SchemaConfig,
    cfg: MonitorConfig,
    seed: int,
    model: LoopmlModel | None = None,
    reference_metrics: dict[str, float] | None = None,
    metric: str = "roc_auc",
) -> DriftResult:
    """Drift of the inputs, and decay of ``metric`` where labels arrived and a model is given."""
    features = [
        c for c in schema.feature_columns if c in current.columns and c in reference.columns
    ]
    kinds = schema.kinds
    numeric = [c for c in features if kinds[c] in ("numeric", "integer")]
    categorical = [c for c in features if kinds[c] in ("categorical", "boolean")]
    ref = _comparable(_sample(reference, cfg.sample_rows, seed), numeric, categorical)
    cur = _comparable(_sample(current, cfg.sample_rows, seed), numeric, categorical)
    share, scores, html = _evidently(ref, cur, numeric, categorical, cfg)
    result = DriftResult(
        rows_reference=len(ref),
        rows_current=len(cur),
        drift_share=share,
        drifted_columns=sorted(c for c, s in scores.items() if s.drifted),
        column_scores=scores,
        html=html,
    )
    has_target = schema.target in current
    labelled = _sample(
        current[current[schema.target].notna()] if has_target else current.iloc[:0],
        cfg.sample_rows,
        seed,
    )
    if model is not None and len(labelled) >= cfg.min_labelled_rows:
        current_metric = _labelled_metric(labelled, model, schema, metric)
        reference_metric = (reference_metrics or {}).get(metric)
        decay = None
        if current_metric is not None and reference_metric is not None:
            sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
            decay = sign * (reference_metric - current_metric)
        result = replace(
            result,
            labelled_rows=len(labelled),
            current_metric=current_metric,
            reference_metric=reference_metric,
            decay=decay,
        )
    log.info(
        "drift share %.2f (%d/%d columns drifted)%s",
        share,
        len(result.drifted_columns),
        len(scores),
        ""
        if result.decay is None
        else f"; {metric} decay {result.decay:+.4f} on {result.labelled_rows} labels",
    )
    return result


def finite_scores(result: DriftResult) -> dict[str, float]:
    """Per-column drift scores that are numbers (for metric logging)."""
    return {c: s.score for c, s in result.column_scores.items() if np.isfinite(s.score)}
