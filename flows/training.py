"""The training flow: collect -> validate -> features -> train -> evaluate -> promote.

Wiring only: every step is a task from ``tasks/``, called with keywords.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from loopml.config import load_params
from tasks.collect import conform, describe_source, read_source, write_snapshot
from tasks.evaluate import analyze, evaluate, log_analysis, write_reports
from tasks.features import fit_transformer, split, write_features
from tasks.promote import register_and_promote
from tasks.tracking import (
    TrainingResult,
    log_run_context,
    parent_run,
    publish_summary,
    run_tags,
    select_best,
    setup,
)
from tasks.train import log_candidate, prepare_model_data, train_candidate
from tasks.validate import enforce, load_or_create_suite, run_validation


@flow(name="training", log_prints=False)
def training(
    params_path: str = "params.yaml", overrides: dict[str, Any] | None = None
) -> TrainingResult:
    """Collect a batch, validate it, build features, train and evaluate every candidate, and
    promote the best in the MLflow registry when the policy allows.

    Args:
        params_path: the params.yaml to load.
        overrides: nested keys that replace those of params.yaml for this run,
            e.g. ``{"data": {"source": {"generator": {"n_rows": 5000}}}}``.
    """
    params = load_params(params_path, overrides)
    schema = params.data.schema_
    seed = params.project.seed
    metric = params.primary_metric
    tracking = setup(params=params)

    with parent_run(tracking=tracking, params=params) as run_id:
        frame = read_source(source=params.data.source, root=params.root)
        frame = conform(frame=frame, schema=schema, clean=params.data.clean)
        snapshot = write_snapshot(
            frame=frame,
            snapshots_dir=params.path("snapshots"),
            current_pointer=params.path("current"),
            source=describe_source(params.data.source),
            versioning=params.data.versioning,
        )
        suite = load_or_create_suite(
            suite_path=params.path("suite"), frame=frame, schema=schema, cfg=params.validate_
        )
        report = run_validation(
            frame=frame,
            suite=suite,
            cfg=params.validate_,
            snapshot_version=snapshot.version,
            docs_dir=params.path("validation") / "docs" if params.validate_.data_docs else None,
        )
        enforce(
            report=report,
            snapshot_path=Path(snapshot.path),
            validation_dir=params.path("validation"),
            quarantine_dir=params.path("quarantine"),
        )
        splits = split(frame=frame, schema=schema, cfg=params.features.split, seed=seed)
        transformer = fit_transformer(train=splits.train, schema=schema, cfg=params.features)
        features = write_features(
            splits=splits,
            transformer=transformer,
            out_dir=params.path("features"),
            data_version=snapshot.version,
            schema=schema,
        )
        log_run_context(
            tracking=tracking,
            run_id=run_id,
            params=params,
            data_version=snapshot.version,
            snapshot_path=Path(snapshot.path),
            frame=frame,
            validation_dir=params.path("validation"),
            features_dir=params.path("features"),
        )
        data = prepare_model_data(features=features, schema=schema, features_cfg=params.features)
        fits = [
            train_candidate(
                candidate=candidate,
                index=index,
                data=data,
                metric=metric,
                lightning=params.train.lightning,
                seed=seed,
            )
            for index, candidate in enumerate(params.train.candidates)
            if candidate.enabled
        ]
        best = select_best(fits=fits, metric=metric)
        evaluations = [
            evaluate(fit=fit, data=data, cfg=params.evaluate, metric=metric, seed=seed)
            for fit in fits
        ]
        logged = [
            log_candidate(
                fit=fit,
                evaluation=evaluation,
                data=data,
                tracking=tracking,
                parent_run_id=run_id,
                tags=run_tags(params, snapshot.version),
            )
            for fit, evaluation in zip(fits, evaluations, strict=True)
        ]
        analysis = analyze(
            fit=fits[best],
            evaluation=evaluations[best],
            data=data,
            cfg=params.evaluate,
            metric=metric,
            seed=seed,
        )
        log_analysis(tracking=tracking, run_id=logged[best]["run_id"], analysis=analysis)
        metrics_file = write_reports(
            best=analysis, evaluations=evaluations, reports_dir=params.path("reports")
        )
        decision = register_and_promote(
            model_uri=logged[best]["model_uri"],
            run_id=logged[best]["run_id"],
            challenger_metrics=evaluations[best].metrics,
            data=data,
            metric=metric,
            cfg=params.promote,
            tracking=tracking,
            tags=run_tags(params, snapshot.version),
            lock_path=params.path("locks") / f"promote-{params.promote.model_name}.lock",
            resamples=params.evaluate.bootstrap_resamples,
            seed=seed,
        )
        return publish_summary(
            tracking=tracking,
            run_id=run_id,
            data_version=snapshot.version,
            metric=metric,
            fits=fits,
            evaluations=evaluations,
            logged=logged,
            best=best,
            decision=decision,
            reports={"metrics": str(metrics_file)},
            features=features,
        )
