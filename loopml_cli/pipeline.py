"""Commands that run the pipeline: ``run`` (the training flow) and the DVC stage commands, which
run the same stage flows one at a time; ``params``, ``init`` and ``generate``."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console

from loopml.exceptions import LoopmlError
from loopml_cli.app import (
    ParamsOpt,
    SetOpt,
    VerboseOpt,
    app,
    console,
    fail,
    load,
    overrides_of,
    setup,
)


@app.command()
def run(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run the training flow: collect, validate, features, train, evaluate, promote.

    Uses Prefect's embedded API (no server to start) and the MLflow store in params.yaml.
    """
    setup(params, verbose)
    try:
        load(params, set_)  # fail fast on bad configuration, before Prefect starts
        from flows.training import training

        started = time.perf_counter()
        result = training(params_path=str(params.resolve()), overrides=overrides_of(set_))
    except LoopmlError as exc:
        fail(exc)
    from rich.markdown import Markdown

    out = Console()
    out.print(Markdown(result.markdown))
    out.print(
        f"\nfinished in {time.perf_counter() - started:.1f}s; "
        f"MLflow UI: `loopml ui -p {params}`, then {result.parent_run_url}"
    )


def _stage(name: str, flow: Callable[..., Any], params: Path, set_: list[str] | None) -> Any:
    try:
        load(params, set_)
        with console.status(f"[bold]{name}[/] ..."):
            return flow(params_path=str(params.resolve()), overrides=overrides_of(set_))
    except LoopmlError as exc:
        fail(exc)


@app.command()
def collect(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, verbose: VerboseOpt = False
) -> None:
    """DVC stage: read the configured source and write a versioned snapshot."""
    setup(params, verbose)
    from flows.data import collect as flow

    snap = _stage("collect", flow, params, set_)
    console.print(f"snapshot [bold]{snap.version}[/] ({snap.rows:,} rows) -> {snap.path}")


@app.command()
def validate(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, verbose: VerboseOpt = False
) -> None:
    """DVC stage: run the Great Expectations suite on the current snapshot."""
    setup(params, verbose)
    from flows.data import validate as flow

    report = _stage("validate", flow, params, set_)
    console.print(
        f"validation passed: {report.evaluated} expectations, {len(report.warnings)} warning(s)"
    )


@app.command()
def features(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, verbose: VerboseOpt = False
) -> None:
    """DVC stage: split the validated snapshot and fit the feature transformer."""
    setup(params, verbose)
    from flows.data import featurize as flow

    fs = _stage("features", flow, params, set_)
    console.print(f"features: {fs.sizes} -> {fs.directory}")


@app.command()
def train(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, verbose: VerboseOpt = False
) -> None:
    """DVC stage: fit every candidate on the current features; each is an MLflow run."""
    setup(params, verbose)
    from flows.modeling import train as flow

    trained = _stage("train", flow, params, set_)
    for i, c in enumerate(trained.candidates):
        mark = " (best)" if i == trained.best else ""
        console.print(f"{c.name:<12} {c.kind:<24} val {c.val_score:.4f}{mark}", markup=False)


@app.command()
def evaluate(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, verbose: VerboseOpt = False
) -> None:
    """DVC stage: evaluate the trained candidates; write DVC metrics and plots."""
    setup(params, verbose)
    from flows.modeling import evaluate as flow

    evaluated = _stage("evaluate", flow, params, set_)
    console.print(f"metrics -> {evaluated.metrics_file} (dvc metrics show; dvc plots show)")


@app.command("params")
def show_params(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Validate params.yaml (with overrides) and print the resolved configuration."""
    setup(params)
    try:
        p = load(params, set_)
    except LoopmlError as exc:
        fail(exc)
    typer.echo(yaml.safe_dump(p.model_dump(mode="json", by_alias=True), sort_keys=False))


@app.command()
def init(
    params: ParamsOpt = Path("params.yaml"),
    remote_url: Annotated[
        str | None,
        typer.Option(help="URL of the default DVC remote (default: keep .dvc/config's)."),
    ] = None,
) -> None:
    """Initialize git and DVC (a local folder remote) in the folder of params.yaml."""
    setup(params)
    from loopml.project import init_project

    try:
        messages = init_project(params.resolve().parent, remote_url=remote_url)
    except LoopmlError as exc:
        fail(exc)
    for m in messages:
        console.print(m)


@app.command()
def generate(
    out: Annotated[Path, typer.Argument(help="Output file: .parquet or .csv")],
    rows: Annotated[int, typer.Option(min=1, help="Number of rows.")] = 100_000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 42,
    start: Annotated[str, typer.Option(help="First event day.")] = "2024-01-01",
    days: Annotated[float, typer.Option(help="Days the batch spans.")] = 30.0,
    id_start: Annotated[int, typer.Option(help="First customer id.")] = 1,
    shift: Annotated[
        list[str] | None, typer.Option(help="Covariate shift, feature=strength (repeatable).")
    ] = None,
    concept: Annotated[float, typer.Option(min=0.0, max=1.0, help="Concept shift 0..1.")] = 0.0,
) -> None:
    """Write a batch of the bundled churn dataset to a file."""
    from loopml.config import DriftConfig
    from loopml.datagen import generate_churn
    from loopml.io import write_atomic

    covariate = {}
    for item in shift or []:
        name, _, value = item.partition("=")
        covariate[name] = float(value)
    started = time.perf_counter()
    frame = generate_churn(
        rows, seed, start, days, id_start, DriftConfig(covariate=covariate, concept=concept)
    )
    if out.suffix == ".csv":
        write_atomic(out, lambda p: frame.to_csv(p, index=False))
    else:
        write_atomic(out, lambda p: frame.to_parquet(p, index=False))
    console.print(f"{rows:,} rows -> {out} in {time.perf_counter() - started:.1f}s")
