"""validate: the Great Expectations quality gate.

A suite is built once from the schema declared in ``params.yaml`` plus a profile of the first
accepted snapshot, saved as a reviewable JSON file (``paths.suite``), and enforced on every new
snapshot. Every expectation carries a check category (``meta.check``: columns, types, nulls,
ranges, domains, unique_id, row_count, target, class_balance) whose severity comes from
``validate.severity``: blocking failures stop the flow and quarantine the snapshot, warnings
are reported and let it through. All failures are collected before anything is raised.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prefect import task

from loopml.config import SchemaConfig, ValidateConfig
from loopml.exceptions import ConfigError, DataValidationError
from loopml.io import write_json
from loopml.versioning import dvc_move, find_repo_root, remove_quietly

log = logging.getLogger(__name__)

NUMERIC_TYPES = [
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "float32",
    "float64",
    "Int8",
    "Int16",
    "Int32",
    "Int64",
    "Float32",
    "Float64",
]
TYPE_LISTS: dict[str, list[str]] = {
    "numeric": NUMERIC_TYPES,
    "integer": NUMERIC_TYPES,
    "boolean": [
        "bool",
        "object",
    ],  # object: booleans with nulls; the domain check below pins values
    "datetime": ["datetime64[ns]", "datetime64[us]", "datetime64[ms]", "datetime64[s]"],
    "categorical": ["object", "str", "string", "category"],
}
_GX_SEVERITY = {"blocking": "critical", "warning": "warning"}
MAX_BALANCE_CLASSES = 20


@dataclass(frozen=True)
class Finding:
    check: str
    severity: str
    expectation: str
    column: str | None
    expected: dict[str, Any]
    observed: str

    def message(self) -> str:
        col = f"column '{self.column}': " if self.column else ""
        exp = ", ".join(f"{k}={_short(v)}" for k, v in self.expected.items())
        return f"[{self.check}] {col}{self.expectation}({exp}) -> observed {self.observed}"


@dataclass(frozen=True)
class ValidationReport:
    snapshot: str
    success: bool
    evaluated: int
    blocking: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0
    gx_result: dict[str, Any] = field(default_factory=dict, repr=False)

    def summary(self) -> dict[str, Any]:
        return {
            "snapshot": self.snapshot,
            "success": self.success,
            "evaluated": self.evaluated,
            "blocking": [f.message() for f in self.blocking],
            "warnings": [f.message() for f in self.warnings],
            "findings": [asdict(f) for f in (*self.blocking, *self.warnings)],
        }


def _short(v: Any, limit: int = 8) -> str:
    if isinstance(v, list | tuple | set):
        items = list(v)
        shown = ", ".join(map(str, items[:limit]))
        return f"[{shown}{', ...' if len(items) > limit else ''}]"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _py(v: Any) -> Any:
    """numpy scalars to plain Python (the suite is JSON)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return v


# --------------------------------------------------------------------------- building the suite
def _expectation(kind: str, check: str, **kwargs: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "kwargs": {k: _py(v) for k, v in kwargs.items()},
        "meta": {"check": check},
    }


def profile_suite(frame: pd.DataFrame, schema: SchemaConfig, cfg: ValidateConfig) -> dict[str, Any]:
    """Build the suite (as GX's JSON form) from the declared schema and a profile of ``frame``."""
    exps: list[dict[str, Any]] = []
    n = len(frame)
    for col, kind in schema.columns.items():
        exps.append(_expectation("expect_column_to_exist", "columns", column=col))
        exps.append(
            _expectation(
                "expect_column_values_to_be_in_type_list",
                "types",
                column=col,
                type_list=TYPE_LISTS[kind],
            )
        )
        present = frame[col] if col in frame.columns else pd.Series(dtype=float)
        null_frac = float(present.isna().mean()) if n else 0.0
        if col == schema.target or col == schema.id_column:
            exps.append(
                _expectation(
                    "expect_column_values_to_not_be_null",
                    "target" if col == schema.target else "unique_id",
                    column=col,
                )
            )
        else:
            floor = max(0.0, 1.0 - null_frac - cfg.null_fraction_slack)
            exps.append(
                _expectation(
                    "expect_column_proportion_of_non_null_values_to_be_between",
                    "nulls",
                    column=col,
                    min_value=round(floor, 4),
                    max_value=1.0,
                )
            )
        values = present.dropna()
        if kind in ("numeric", "integer") and len(values) and col != schema.id_column:
            lo, hi = values.quantile([0.001, 0.999]).astype(float)
            pad = cfg.range_margin * max(hi - lo, abs(hi) * 0.01, 1e-9)
            check = "target" if col == schema.target else "ranges"
            exps.append(
                _expectation(
                    "expect_column_values_to_be_between",
                    check,
                    column=col,
                    min_value=lo - pad,
                    max_value=hi + pad,
                    mostly=0.99,
                )
            )
        if kind == "boolean":
            exps.append(
                _expectation(
                    "expect_column_values_to_be_in_set",
                    "types",
                    column=col,
                    value_set=[False, True],
                )
            )
        elif kind == "categorical" and col != schema.target:
            domain = sorted(map(_py, pd.unique(values)), key=str)
            if 0 < len(domain) <= cfg.domain_max_values:
                exps.append(
                    _expectation(
                        "expect_column_values_to_be_in_set", "domains", column=col, value_set=domain
                    )
                )
    if schema.id_column:
        exps.append(
            _expectation("expect_column_values_to_be_unique", "unique_id", column=schema.id_column)
        )
    exps.append(
        _expectation(
            "expect_table_row_count_to_be_between",
            "row_count",
            min_value=cfg.min_rows,
            max_value=cfg.max_rows,
        )
    )
    if schema.task == "classification" and schema.target in frame.columns:
        shares = frame[schema.target].value_counts(normalize=True, dropna=True)
        classes = sorted(map(_py, shares.index), key=str)
        exps.append(
            _expectation(
                "expect_column_distinct_values_to_be_in_set",
                "target",
                column=schema.target,
                value_set=classes,
            )
        )
        if len(shares) <= MAX_BALANCE_CLASSES:
            for cls, share in shares.items():
                lo = max(0.0, float(share) - cfg.class_share_slack)
                hi = min(1.0, float(share) + cfg.class_share_slack)
                # Share of `cls` >= lo, and share of `cls` <= hi, both stated as GX `mostly`.
                exps.append(
                    _expectation(
                        "expect_column_values_to_be_in_set",
                        "class_balance",
                        column=schema.target,
                        value_set=[_py(cls)],
                        mostly=round(lo, 4),
                    )
                )
                exps.append(
                    _expectation(
                        "expect_column_values_to_not_be_in_set",
                        "class_balance",
                        column=schema.target,
                        value_set=[_py(cls)],
                        mostly=round(1.0 - hi, 4),
                    )
                )
    return {
        "name": cfg.suite_name,
        "expectations": exps,
        "meta": {
            "generated_by": "loopml profile_suite",
            "profiled_rows": n,
            "note": "Review and edit freely. Severities come from params.yaml validate.severity "
            "by meta.check category.",
        },
    }


@task(name="load-or-create-suite")
def load_or_create_suite(
    suite_path: Path, frame: pd.DataFrame, schema: SchemaConfig, cfg: ValidateConfig
) -> dict[str, Any]:
    """Load the reviewable suite file; profile ``frame`` into a new one if there is none."""
    if suite_path.is_file():
        try:
            suite = json.loads(suite_path.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError([f"{suite_path}: not valid JSON ({exc})"], str(suite_path)) from exc
        if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
            raise ConfigError([f"{suite_path}: not an expectation suite"], str(suite_path))
        return suite
    if cfg.on_missing_suite == "error":
        raise ConfigError(
            [f"validate.on_missing_suite is 'error' and {suite_path} does not exist"], "params.yaml"
        )
    suite = profile_suite(frame, schema, cfg)
    write_json(suite_path, suite)
    log.info(
        "profiled a new expectation suite with %d expectations: %s",
        len(suite["expectations"]),
        suite_path,
    )
    return suite


# --------------------------------------------------------------------------- running GX
def _exception_message(info: dict[str, Any]) -> str | None:
    """GX reports exceptions flat, or keyed by the metric that raised them."""
    candidates = [info, *(v for v in info.values() if isinstance(v, dict))]
    for item in candidates:
        message = item.get("exception_message")
        if message and (item.get("raised_exception", True)):
            lines = str(message).strip().splitlines()
            return lines[-1] if lines else "exception"
    return None


def _observed(res: dict[str, Any]) -> str:
    message = _exception_message(res.get("exception_info") or {})
    if message:
        return f"error: {message}"
    result = res.get("result") or {}
    if "observed_value" in result:
        return _short(result["observed_value"])
    if "unexpected_percent" in result and result["unexpected_percent"] is not None:
        examples = []
        for v in result.get("partial_unexpected_list") or []:
            if v not in examples:
                examples.append(v)
        ex = f", e.g. {_short(examples, 5)}" if examples else ""
        pct, count = result["unexpected_percent"], result.get("unexpected_count")
        return f"{pct:.2f}% unexpected ({count} rows){ex}"
    return "failed"


def _gx_suite(suite: dict[str, Any], cfg: ValidateConfig) -> tuple[Any, int]:
    import great_expectations as gx
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    severities = cfg.severity.model_dump()
    gx_suite = gx.ExpectationSuite(name=suite.get("name", cfg.suite_name))
    count = 0
    for exp in suite["expectations"]:
        check = (exp.get("meta") or {}).get("check", "columns")
        level = severities.get(check, "blocking")
        if level == "off":
            continue
        conf = ExpectationConfiguration(
            type=exp["type"],
            kwargs=exp.get("kwargs", {}),
            meta={**(exp.get("meta") or {}), "check": check, "level": level},
            severity=_GX_SEVERITY[level],
        )
        gx_suite.add_expectation(conf.to_domain_obj())
        count += 1
    return gx_suite, count


def _run_gx(
    frame: pd.DataFrame,
    spec: dict[str, Any],
    cfg: ValidateConfig,
    batch_name: str,
    result_format: str,
    docs_dir: Path | None,
) -> tuple[dict[str, Any], int]:
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    if docs_dir is not None:
        shutil.rmtree(docs_dir, ignore_errors=True)
        docs_dir.mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            site_name="loopml",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs_dir.resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    gx_suite, count = _gx_suite(spec, cfg)
    gx_suite = context.suites.add(gx_suite)
    source = context.data_sources.add_pandas("snapshot")
    batch_def = source.add_dataframe_asset(batch_name).add_batch_definition_whole_dataframe("all")
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name="loopml", data=batch_def, suite=gx_suite)
    )
    actions = [gx.checkpoint.UpdateDataDocsAction(name="docs")] if docs_dir is not None else []
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="loopml",
            validation_definitions=[definition],
            actions=actions,
            result_format={"result_format": result_format, "partial_unexpected_count": 10},
        )
    )
    run = checkpoint.run(batch_parameters={"dataframe": frame})
    return next(iter(run.run_results.values())).to_json_dict(), count


@task(name="run-validation")
def run_validation(
    frame: pd.DataFrame,
    suite: dict[str, Any],
    cfg: ValidateConfig,
    snapshot_version: str,
    docs_dir: Path | None = None,
) -> ValidationReport:
    """Run the suite on ``frame`` with GX; collect every blocking failure and warning.

    Two passes keep large batches fast: every expectation with GX's cheapest result format,
    then only the failed ones again with observed values and examples for the messages.
    """
    started = time.perf_counter()
    # GX copies the frame for each column check; a consolidated frame makes each copy cheap.
    frame = frame.copy()
    result, count = _run_gx(frame, suite, cfg, snapshot_version, "BOOLEAN_ONLY", docs_dir)
    failed = [r for r in result["results"] if not r.get("success")]
    if failed:
        detail_spec = {
            "name": suite.get("name", cfg.suite_name),
            "expectations": [
                {
                    "type": r["expectation_config"]["type"],
                    "kwargs": {
                        k: v
                        for k, v in r["expectation_config"]["kwargs"].items()
                        if k != "batch_id"
                    },
                    "meta": r["expectation_config"].get("meta") or {},
                }
                for r in failed
            ],
        }
        detail = _run_gx(frame, detail_spec, cfg, snapshot_version, "SUMMARY", None)[0]["results"]
        result["results"] = [r for r in result["results"] if r.get("success")] + detail

    blocking, warnings = [], []
    for res in result["results"]:
        if res.get("success"):
            continue
        conf = res["expectation_config"]
        kwargs = dict(conf.get("kwargs") or {})
        column = kwargs.pop("column", None)
        kwargs.pop("batch_id", None)
        meta = conf.get("meta") or {}
        finding = Finding(
            check=meta.get("check", "columns"),
            severity=meta.get("level", "blocking"),
            expectation=conf["type"],
            column=column,
            expected=kwargs,
            observed="column is absent"
            if conf["type"] == "expect_column_to_exist"
            else _observed(res),
        )
        (blocking if finding.severity == "blocking" else warnings).append(finding)
    report = ValidationReport(
        snapshot=snapshot_version,
        success=not blocking,
        evaluated=count,
        blocking=blocking,
        warnings=warnings,
        seconds=time.perf_counter() - started,
        gx_result=result,
    )
    log.info(
        "validated %s rows against %d expectations in %.2fs: %d blocking failure(s), %d warning(s)",
        f"{len(frame):,}",
        count,
        report.seconds,
        len(blocking),
        len(warnings),
    )
    for f in warnings:
        log.warning("validation warning: %s", f.message())
    return report


# --------------------------------------------------------------------------- the gate
@task(name="enforce-validation", retries=1, retry_delay_seconds=2)
def enforce(
    report: ValidationReport,
    snapshot_path: Path,
    validation_dir: Path,
    quarantine_dir: Path,
) -> ValidationReport:
    """Write the report; on a blocking failure move the snapshot to quarantine and raise.

    Raises :class:`DataValidationError` listing every blocking failure with its observed value.
    """
    validation_dir.mkdir(parents=True, exist_ok=True)
    write_json(validation_dir / "summary.json", report.summary())
    write_json(validation_dir / "result.json", report.gx_result)
    if report.success:
        return report
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    target = quarantine_dir / snapshot_path.name
    write_json(quarantine_dir / f"{snapshot_path.stem}.validation.json", report.summary())
    dvc_file = snapshot_path.with_name(snapshot_path.name + ".dvc")
    root = find_repo_root(snapshot_path.resolve().parent)
    if target.exists():
        # The same batch was quarantined before: its copy (and DVC version) is already there.
        remove_quietly(snapshot_path, dvc_file)
    elif dvc_file.exists() and root is not None:
        dvc_move(snapshot_path, target, root)
    elif snapshot_path.exists():
        shutil.move(str(snapshot_path), target)
    raise DataValidationError(
        report.snapshot, [f.message() for f in report.blocking], quarantined_to=str(target)
    )
