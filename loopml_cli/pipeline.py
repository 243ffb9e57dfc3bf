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

from loopml_cli.app import (
    DebugOpt,
    ParamsOpt,
    Session,
    SetOpt,
    app,
    console,
    load,
    overrides_of,
    session,
)


@app.command()
def run(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, debug: DebugOpt = False
) -> None:
    """Run the training flow: collect, validate, features, train, evaluate, promote.

    Uses the Prefect API in PREFECT_API_URL (`loopml up` sets one), or an embedded one that
    lives as long as the command, and the MLflow store in params.yaml.
    """
    with session("run", params, debug, prefect=True) as s:
        from loopml.project import require_versioning

        require_versioning(load(params, set_))  # fail fast, before anything runs
        from flows.training import training

        s.prefect_ready()
        started = time.perf_counter()
        result = training(params_path=str(params.resolve()), overrides=overrides_of(set_))
    from rich.markdown import Markdown

    out = Console()
    out.print(Markdown(result.markdown))
    out.print(f"\nfinished in {time.perf_counter() - started:.1f}s; log: {s.log_file}")


def _stage(
    name: str, flow: Callable[..., Any], params: Path, set_: list[str] | None, s: Session
) -> Any:
    load(params, set_)
    s.prefect_ready()
    with console.status(f"[bold]{name}[/] ..."):
        return flow(params_path=str(params.resolve()), overrides=overrides_of(set_))


@app.command()
def collect(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, debug: DebugOpt = False
) -> None:
    """DVC stage: read the configured source and write a versioned snapshot."""
    with session("collect", params, debug, prefect=True) as s:
        from flows.data import collect as flow

        snap = _stage("collect", flow, params, set_, s)
    console.print(f"snapshot [bold]{snap.version}[/] ({snap.rows:,} rows) -> {snap.path}")


@app.command()
def validate(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, debug: DebugOpt = False
) -> None:
    """DVC stage: run the Great Expectations suite on the current snapshot."""
    with session("validate", params, debug, prefect=True) as s:
        from flows.data import validate as flow

        report = _stage("validate", flow, params, set_, s)
    console.print(
        f"validation passed: {report.evaluated} expectations, {len(report.warnings)} warning(s)"
    )


@app.command()
def features(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, debug: DebugOpt = False
) -> None:
    """DVC stage: split the validated snapshot and fit the feature transformer."""
    with session("features", params, debug, prefect=True) as s:
        from flows.data import featurize as flow

        fs = _stage("features", flow, params, set_, s)
    console.print(f"features: {fs.sizes} -> {fs.directory}")


@app.command()
def train(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, debug: DebugOpt = False
) -> None:
    """DVC stage: fit every candidate on the current features; each is an MLflow run."""
    with session("train", params, debug, prefect=True) as s:
        from flows.modeling import train as flow

        trained = _stage("train", flow, params, set_, s)
    for i, c in enumerate(trained.candidates):
        mark = " (best)" if i == trained.best else ""
        console.print(f"{c.name:<12} {c.kind:<24} val {c.val_score:.4f}{mark}", markup=False)


@app.command()
def evaluate(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, debug: DebugOpt = False
) -> None:
    """DVC stage: evaluate the trained candidates; write DVC metrics and plots."""
    with session("evaluate", params, debug, prefect=True) as s:
        from flows.modeling import evaluate as flow

        evaluated = _stage("evaluate", flow, params, set_, s)
    console.print(f"metrics -> {evaluated.metrics_file} (dvc metrics show; dvc plots show)")


@app.command("params")
def show_params(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Validate params.yaml (with overrides) and print the resolved configuration."""
    with session("params", params):
        p = load(params, set_)
    typer.echo(yaml.safe_dump(p.model_dump(mode="json", by_alias=True), sort_keys=False))


@app.command()
def init(
    params: ParamsOpt = Path("params.yaml"),
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Draft params.yaml from a sample of this data: a CSV/Parquet file or folder, "
            "an http(s) URL, or an SQLAlchemy URL (with --table or --query).",
        ),
    ] = None,
    target: Annotated[
        str | None,
        typer.Option(help="The target: a column name, a 1-based position, or 'last' (default)."),
    ] = None,
    ordered: Annotated[
        bool, typer.Option(help="Rows are in time order: split in file order.")
    ] = False,
    table: Annotated[str | None, typer.Option(help="SQL: the table to read.")] = None,
    query: Annotated[str | None, typer.Option(help="SQL: the query to read.")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing params.yaml.")] = False,
    remote_url: Annotated[
        str | None,
        typer.Option(help="URL of the default DVC remote (default: keep .dvc/config's)."),
    ] = None,
) -> None:
    """Set up git and DVC in the folder of params.yaml (a local folder remote by default);
    with --from, first draft that params.yaml from the data.

    loopml init --from data/customers.csv --target churned -p myproject/params.yaml
    """
    with session("init", params):
        from loopml.project import init_project

        if source is not None:
            _draft(source, params, target, ordered, table, query, force)
        messages = init_project(params.resolve().parent, remote_url=remote_url)
    for m in messages:
        console.print(m, markup=False)
    if source is not None:
        console.print(f"next: loopml run -p {params}", markup=False)


def _draft(
    source: str,
    params: Path,
    target: str | None,
    ordered: bool,
    table: str | None,
    query: str | None,
    force: bool,
) -> None:
    from loopml.drafting import draft_params
    from loopml.exceptions import ConfigError
    from loopml.io import write_atomic

    if params.exists() and not force:
        raise ConfigError([f"{params} exists; choose another -p, or --force to overwrite"], "init")
    drafted = draft_params(source, params.resolve(), target, ordered, table, query)
    write_atomic(params, lambda p: p.write_text(drafted.text))
    d = drafted.draft
    console.print(
        f"drafted {params}: {len(d.columns)} columns, target {d.target} ({d.task}), "
        f"split {d.split}" + (f", dropped {sorted(d.drop)}" if d.drop else ""),
        markup=False,
    )
    for warning in d.warnings:
        console.print(f"check: {warning}", style="yellow", markup=False)
    if "${LOOPML_SOURCE_URL}" in drafted.text:
        console.print(
            "the URL holds a password: params.yaml refers to ${LOOPML_SOURCE_URL}; "
            "set that variable to the URL before `loopml run`",
            style="yellow",
            markup=False,
        )


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
