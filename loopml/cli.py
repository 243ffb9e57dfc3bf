"""``loopml``: the command line.

Heavy imports happen inside commands, after the environment is set.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from loopml.exceptions import LoopmlError

app = typer.Typer(
    name="loopml",
    help="Closed-loop MLOps for tabular ML: collect -> validate -> features -> train -> "
    "evaluate -> promote, as Prefect flows over DVC, Great Expectations and MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
log = logging.getLogger("loopml.cli")

ParamsOpt = Annotated[
    Path, typer.Option("--params", "-p", help="The params.yaml to use.", envvar="LOOPML_PARAMS")
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-S", help="Override a key for this run: -S data.source.generator.n_rows=5000"
    ),
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]


def _setup(params_path: Path, verbose: bool = False) -> None:
    from loopml.runtime import configure_environment, configure_logging

    configure_environment(params_path.resolve().parent)
    configure_logging(verbose)


def _load(params_path: Path, overrides: list[str] | None) -> Any:
    from loopml.config import load_params, parse_dotted

    return load_params(params_path, parse_dotted(overrides or []))


def _fail(exc: BaseException) -> None:
    console.print("error:", style="bold red", end=" ")
    console.print(str(exc), markup=False, highlight=False)
    raise typer.Exit(code=2) from None


@app.command()
def run(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    verbose: VerboseOpt = False,
) -> None:
    """Run the training flow: collect, validate, features, train, evaluate, promote.

    Uses Prefect's embedded API (no server to start) and the MLflow store in params.yaml.
    """
    _setup(params, verbose)
    from loopml.config import parse_dotted

    try:
        _load(params, set_)  # fail fast on bad configuration, before Prefect starts
        from flows.training import training

        started = time.perf_counter()
        result = training(params_path=str(params.resolve()), overrides=parse_dotted(set_ or []))
    except LoopmlError as exc:
        _fail(exc)
        return
    from rich.markdown import Markdown

    out = Console()
    out.print(Markdown(result.markdown))
    out.print(
        f"\nfinished in {time.perf_counter() - started:.1f}s; "
        f"MLflow UI: `make ui`, then {result.parent_run_url}"
    )


def _stage(name: str, params: Path, set_: list[str] | None, verbose: bool) -> Any:
    _setup(params, verbose)
    from loopml import stages

    try:
        p = _load(params, set_)
        with console.status(f"[bold]{name}[/] ..."):
            return getattr(stages, name)(p)
    except LoopmlError as exc:
        _fail(exc)


@app.command()
def collect(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, verbose: VerboseOpt = False
) -> None:
    """DVC stage: read the configured source and write a versioned snapshot."""
    snap = _stage("collect", params, set_, verbose)
    console.print(f"snapshot [bold]{snap.version}[/] ({snap.rows:,} rows) -> {snap.path}")


@app.command()
def validate(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, verbose: VerboseOpt = False
) -> None:
    """DVC stage: run the Great Expectations suite on the current snapshot."""
    report = _stage("validate", params, set_, verbose)
    console.print(
        f"validation passed: {report.evaluated} expectations, {len(report.warnings)} warning(s)"
    )


@app.command()
def features(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, verbose: VerboseOpt = False
) -> None:
    """DVC stage: split the validated snapshot and fit the feature transformer."""
    fs = _stage("features", params, set_, verbose)
    console.print(f"features: {fs.sizes} -> {fs.directory}")


@app.command()
def train(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, verbose: VerboseOpt = False
) -> None:
    """DVC stage: fit every candidate on the current features (no MLflow logging)."""
    summary = _stage("train", params, set_, verbose)
    for entry in summary:
        console.print(f"{entry['name']:<12} {entry['kind']:<24} val {entry['val']:.4f}")


@app.command()
def evaluate(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, verbose: VerboseOpt = False
) -> None:
    """DVC stage: evaluate the fitted candidates; write DVC metrics and plots."""
    path = _stage("evaluate", params, set_, verbose)
    console.print(f"metrics -> {path} (dvc metrics show; dvc plots show)")


@app.command()
def rollback(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Move the registered model's 'champion' alias back to 'previous'."""
    _setup(params)
    try:
        p = _load(params, set_)
        from loopml.tracking import setup_tracking
        from tasks.promote import rollback as do_rollback

        tracking = setup_tracking(p)
        demoted, restored = do_rollback(tracking, p.promote.model_name)
    except LoopmlError as exc:
        _fail(exc)
        return
    console.print(
        f"{p.promote.model_name}: champion v{demoted} -> v{restored} "
        f"({tracking.model_url(p.promote.model_name, restored)})",
        markup=False,
    )


@app.command()
def ui(
    params: ParamsOpt = Path("params.yaml"),
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 5000,
) -> None:
    """Open the MLflow UI on the store the flows use (the embedded SQLite store by default)."""
    import subprocess

    _setup(params)
    p = _load(params, None)
    from loopml.tracking import artifact_location, tracking_uri

    uri = tracking_uri(p)
    console.print(
        f"MLflow UI on http://{host}:{port} (store: {uri}); Ctrl-C stops it", markup=False
    )
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--default-artifact-root",
        artifact_location(p),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    raise typer.Exit(subprocess.call(cmd))


@app.command()
def serve(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default: serve.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: serve.port).")] = None,
) -> None:
    """Serve the registry's champion over REST: POST /predict, POST /labels, GET /health, /model."""
    _setup(params)
    try:
        p = _load(params, set_)
        import uvicorn

        from loopml import serving

        # Built here even for several workers: a bad tracking store fails before binding.
        api = serving.app_from_params(p)
    except LoopmlError as exc:
        _fail(exc)
        return
    bind, at = host or p.serve.host, port or p.serve.port
    console.print(
        f"serving {p.promote.model_name}@{p.serve.alias} on http://{bind}:{at} "
        f"({p.serve.workers} worker{'s' if p.serve.workers > 1 else ''})",
        markup=False,
    )
    if p.serve.workers > 1:
        from loopml.config import parse_dotted

        os.environ[serving.PARAMS_ENV] = str(params.resolve())
        os.environ[serving.OVERRIDES_ENV] = json.dumps(parse_dotted(set_ or []))
        uvicorn.run(
            "loopml.serving:app_from_environment",
            factory=True,
            workers=p.serve.workers,
            host=bind,
            port=at,
            log_level="warning",
            access_log=False,
        )
        return
    uvicorn.run(api, host=bind, port=at, log_level="warning", access_log=False)


@app.command()
def monitor(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, verbose: VerboseOpt = False
) -> None:
    """Run the monitoring flow once: Evidently drift and quality against the training data."""
    _setup(params, verbose)
    from loopml.config import parse_dotted

    try:
        _load(params, set_)
        from flows.monitoring import monitoring

        verdict = monitoring(params_path=str(params.resolve()), overrides=parse_dotted(set_ or []))
    except LoopmlError as exc:
        _fail(exc)
        return
    Console().print("\n".join(verdict.reasons), markup=False)


@app.command()
def score(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, verbose: VerboseOpt = False
) -> None:
    """Run the batch-scoring flow once: the champion predicts a batch from score.source.

    Predictions go to paths.scores (one Parquet file per run) and to the prediction log.
    Score a file: -S score.source.kind=file -S score.source.file.path=new_customers.csv
    """
    _setup(params, verbose)
    from loopml.config import parse_dotted

    try:
        _load(params, set_)
        from flows.scoring import batch_scoring

        result = batch_scoring(
            params_path=str(params.resolve()), overrides=parse_dotted(set_ or [])
        )
    except LoopmlError as exc:
        _fail(exc)
        return
    console.print(
        f"scored {result.rows:,} rows with {result.model_name} v{result.model_version} "
        f"(@{result.alias}) -> {result.path}",
        markup=False,
    )


@app.command()
def deploy(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Serve the training, monitoring and batch-scoring deployments (schedules from
    params.yaml); blocks."""
    _setup(params)
    try:
        p = _load(params, set_)
    except LoopmlError as exc:
        _fail(exc)
        return
    from loopml.deploy import serve_deployments

    serve_deployments(p, params.resolve())


@app.command()
def up(
    params: ParamsOpt = Path("params.yaml"),
    prefect_port: Annotated[int, typer.Option(help="Prefect server port.")] = 4200,
    mlflow_port: Annotated[int, typer.Option(help="MLflow UI port.")] = 5000,
) -> None:
    """Start the local stack (no Docker): Prefect server, MLflow UI, deployments, model server."""
    _setup(params)
    from loopml.deploy import up as start

    try:
        p = _load(params, None)
        with console.status("starting the Prefect server ..."):
            lines = start(p, params.resolve(), prefect_port=prefect_port, mlflow_port=mlflow_port)
    except (LoopmlError, RuntimeError) as exc:
        _fail(exc)
        return
    for line in lines:
        console.print(line, markup=False)
    console.print(f"logs: {p.path('runtime')}/*.log; stop with `loopml down`", markup=False)


@app.command()
def down(params: ParamsOpt = Path("params.yaml")) -> None:
    """Stop what `loopml up` started, and nothing else."""
    _setup(params)
    from loopml.deploy import down as stop

    stopped = stop(_load(params, None))
    console.print(
        "stopped: " + (", ".join(stopped) if stopped else "nothing was running"), markup=False
    )


@app.command()
def demo(
    params: ParamsOpt = Path("params.yaml"),
    api_url: Annotated[
        str, typer.Option(help="Prefect API of `loopml up`.")
    ] = "http://127.0.0.1:4200/api",
    rows: Annotated[int, typer.Option(min=100, help="Drifted rows of traffic to send.")] = 3000,
) -> None:
    """The whole loop on a running stack (`loopml up`): drifted traffic -> monitoring -> retraining
    -> promotion or refusal -> the server answers with the new champion."""
    _setup(params)
    from loopml.demo import run_demo

    try:
        result = run_demo(_load(params, None), api_url, rows=rows)
    except (LoopmlError, OSError) as exc:
        _fail(exc)
        return
    console.print(
        json.dumps({k: v for k, v in result.items() if k != "after"}, default=str)[:2000],
        markup=False,
    )


@app.command("params")
def show_params(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Validate params.yaml (with overrides) and print the resolved configuration."""
    import yaml

    _setup(params)
    try:
        p = _load(params, set_)
    except LoopmlError as exc:
        _fail(exc)
        return
    typer.echo(yaml.safe_dump(p.model_dump(mode="json", by_alias=True), sort_keys=False))


@app.command()
def init(
    params: ParamsOpt = Path("params.yaml"),
    remote_url: Annotated[
        str | None,
        typer.Option(help="URL of the default DVC remote (default: keep .dvc/config's)."),
    ] = None,
) -> None:
    """Initialize DVC (repository and a local folder remote) where it is not yet set up."""
    _setup(params)
    from loopml.project import init_project

    try:
        messages = init_project(params.resolve().parent, remote_url=remote_url)
    except LoopmlError as exc:
        _fail(exc)
        return
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

    covariate = {}
    for item in shift or []:
        name, _, value = item.partition("=")
        covariate[name] = float(value)
    started = time.perf_counter()
    frame = generate_churn(
        rows, seed, start, days, id_start, DriftConfig(covariate=covariate, concept=concept)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    console.print(f"{rows:,} rows -> {out} in {time.perf_counter() - started:.1f}s")


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
