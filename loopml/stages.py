"""The DVC pipeline's stage commands: read inputs from the declared paths, call the same task
functions the Prefect flow calls (through ``.fn``), write the declared outputs."""

from __future__ import annotations

from pathlib import Path

from loopml.config import Params
from tasks.collect import (
    Snapshot,
    conform,
    describe_source,
    load_snapshot_pointer,
    read_snapshot,
    read_source,
    write_snapshot,
)
from tasks.features import FeatureSet, fit_transformer, split, write_features
from tasks.validate import ValidationReport, enforce, load_or_create_suite, run_validation


def collect(params: Params) -> Snapshot:
    frame = read_source.fn(source=params.data.source, root=params.root)
    frame = conform.fn(frame=frame, schema=params.data.schema_, clean=params.data.clean)
    return write_snapshot.fn(
        frame=frame,
        snapshots_dir=params.path("snapshots"),
        current_pointer=params.path("current"),
        source=describe_source(params.data.source),
        versioning=params.data.versioning,
    )


def validate(params: Params) -> ValidationReport:
    snapshot = load_snapshot_pointer(params.path("current"))
    frame = read_snapshot(snapshot)
    suite = load_or_create_suite.fn(
        suite_path=params.path("suite"),
        frame=frame,
        schema=params.data.schema_,
        cfg=params.validate_,
    )
    report = run_validation.fn(
        frame=frame,
        suite=suite,
        cfg=params.validate_,
        snapshot_version=snapshot.version,
        docs_dir=params.path("validation") / "docs" if params.validate_.data_docs else None,
    )
    return enforce.fn(
        report=report,
        snapshot_path=Path(snapshot.path),
        validation_dir=params.path("validation"),
        quarantine_dir=params.path("quarantine"),
    )


def features(params: Params) -> FeatureSet:
    from loopml.exceptions import DataValidationError
    from loopml.io import read_json

    snapshot = load_snapshot_pointer(params.path("current"))
    summary = read_json(params.path("validation") / "summary.json")
    if summary.get("snapshot") != snapshot.version or not summary.get("success"):
        raise DataValidationError(
            snapshot.version,
            ["the current snapshot has not passed validation; run `loopml validate`"],
        )
    frame = read_snapshot(snapshot)
    splits = split.fn(
        frame=frame, schema=params.data.schema_, cfg=params.features.split, seed=params.project.seed
    )
    transformer = fit_transformer.fn(
        train=splits.train, schema=params.data.schema_, cfg=params.features
    )
    return write_features.fn(
        splits=splits,
        transformer=transformer,
        out_dir=params.path("features"),
        data_version=snapshot.version,
        schema=params.data.schema_,
    )


def train(params: Params) -> list[dict[str, object]]:
    """Fit every enabled candidate; save each as a pickled pyfunc model with its val score."""
    import joblib

    from loopml.io import write_atomic, write_json
    from tasks.features import load_feature_set
    from tasks.train import build_model, prepare_model_data, train_candidate

    features = load_feature_set(params.path("features"))
    data = prepare_model_data.fn(
        features=features, schema=params.data.schema_, features_cfg=params.features
    )
    out = params.path("models")
    out.mkdir(parents=True, exist_ok=True)
    summary = []
    for index, candidate in enumerate(params.train.candidates):
        if not candidate.enabled:
            continue
        fit = train_candidate.fn(
            candidate=candidate,
            index=index,
            data=data,
            metric=params.primary_metric,
            lightning=params.train.lightning,
            seed=params.project.seed,
        )
        write_atomic(
            out / f"{fit.name}.joblib", lambda p, f=fit: joblib.dump(build_model(f, data), p)
        )
        summary.append(
            {"name": fit.name, "kind": fit.kind, "val": fit.val_score, "params": fit.params}
        )
    write_json(out / "candidates.json", {"metric": params.primary_metric, "candidates": summary})
    return summary


def evaluate(params: Params) -> Path:
    """Evaluate the saved candidates on the test split; write DVC metrics and plots."""
    import joblib

    from loopml.io import read_json
    from loopml.models import FitResult
    from tasks.evaluate import analyze as analyze_task
    from tasks.evaluate import evaluate as evaluate_task
    from tasks.evaluate import write_reports
    from tasks.features import load_feature_set
    from tasks.tracking import select_best
    from tasks.train import prepare_model_data

    features = load_feature_set(params.path("features"))
    data = prepare_model_data.fn(
        features=features, schema=params.data.schema_, features_cfg=params.features
    )
    models = params.path("models")
    fits = []
    for entry in read_json(models / "candidates.json")["candidates"]:
        model = joblib.load(models / f"{entry['name']}.joblib")
        fits.append(
            FitResult(
                entry["name"], entry["kind"], model.predictor, entry["params"], entry["val"], 0.0
            )
        )
    metric, seed = params.primary_metric, params.project.seed
    evaluations = [
        evaluate_task.fn(fit=fit, data=data, cfg=params.evaluate, metric=metric, seed=seed)
        for fit in fits
    ]
    best = select_best.fn(fits=fits, metric=metric)
    analysis = analyze_task.fn(
        fit=fits[best],
        evaluation=evaluations[best],
        data=data,
        cfg=params.evaluate,
        metric=metric,
        seed=seed,
    )
    return write_reports.fn(
        best=analysis, evaluations=evaluations, reports_dir=params.path("reports")
    )
