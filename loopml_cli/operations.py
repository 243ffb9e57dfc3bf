"""Commands around the champion: ``serve``, ``monitor``, ``score``, ``rollback``, ``ui``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from loopml_cli.app import (
    DebugOpt,
    ParamsOpt,
    SetOpt,
    app,
    console,
    load,
    overrides_of,
    session,
)


@app.command()
def rollback(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Move the registered model's 'champion' alias back to 'previous'."""
    with session("rollback", params):
        p = load(params, set_)
        from loopml.registry import rollback as do_rollback
        from loopml.tracking import setup_tracking

        tracking = setup_tracking(p)
        demoted, restored = do_rollback(tracking.client(), p.promote.model_name)
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
    """Open the MLflow UI on the store the flows use (the embedded SQLite store by default).

    With MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD set, it runs MLflow's basic-auth
    app with that user as admin; without them it binds only to a loopback address.
    """
    from loopml_cli import stack_auth

    with session("ui", params):
        p = load(params)
        auth = stack_auth.read_auth(os.environ, p.serve.token_env)
        stack_auth.check_bind(host, auth, "ui", services=("mlflow",))
        extra = stack_auth.mlflow_auth_env(auth, os.environ, p.path("runtime"))
    from loopml.tracking import artifact_location, tracking_uri

    uri = tracking_uri(p)
    console.print(
        f"MLflow UI on http://{host}:{port} (store: {uri}"
        f"{', basic auth' if auth.mlflow else ''}); Ctrl-C stops it",
        markup=False,
    )
    app_name = ["--app-name", "basic-auth"] if auth.mlflow else []
    cmd = [sys.executable, "-m", "mlflow", "server", *app_name, "--backend-store-uri", uri]
    cmd += ["--default-artifact-root", artifact_location(p)]
    cmd += ["--host", host, "--port", str(port), "--workers", "1"]
    raise typer.Exit(subprocess.call(cmd, env={**os.environ, **extra}))


@app.command()
def serve(
    params: ParamsOpt = Path("params.yaml"),
    set_: SetOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default: serve.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: serve.port).")] = None,
) -> None:
    """Serve the registry's champion over REST: POST /predict, POST /labels, GET /health, /model.

    A bind address other than loopback needs the token (serve.token_env) in the environment.
    """
    from loopml_cli import stack_auth

    with session("serve", params):
        p = load(params, set_)
        auth = stack_auth.read_auth(os.environ, p.serve.token_env)
        stack_auth.check_bind(host or p.serve.host, auth, "serve", services=("model",))
        from loopml.runtime import limit_native_threads

        limit_native_threads(p.serve.threads)  # before the model's libraries load
        import uvicorn

        from loopml.serving import app as serving

        # Built here even for several workers: a bad tracking store fails before binding.
        api = serving.app_from_params(p)
    bind, at = host or p.serve.host, port or p.serve.port
    console.print(
        f"serving {p.promote.model_name}@{p.serve.alias} on http://{bind}:{at} "
        f"({p.serve.workers} worker{'s' if p.serve.workers > 1 else ''})",
        markup=False,
    )
    if p.serve.workers == 1:
        uvicorn.run(api, host=bind, port=at, log_level="warning", access_log=False)
        return
    os.environ[serving.PARAMS_ENV] = str(params.resolve())
    os.environ[serving.OVERRIDES_ENV] = json.dumps(overrides_of(set_))
    uvicorn.run(
        "loopml.serving.app:app_from_environment",
        factory=True,
        workers=p.serve.workers,
        host=bind,
        port=at,
        log_level="warning",
        access_log=False,
    )


@app.command()
def monitor(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, debug: DebugOpt = False
) -> None:
    """Run the monitoring flow once: Evidently drift and quality against the training data."""
    with session("monitor", params, debug, prefect=True) as s:
        load(params, set_)
        from flows.monitoring import monitoring

        s.prefect_ready()
        verdict = monitoring(params_path=str(params.resolve()), overrides=overrides_of(set_))
    Console().print("\n".join(verdict.reasons), markup=False)


@app.command()
def score(
    params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None, debug: DebugOpt = False
) -> None:
    """Run the batch-scoring flow once: the champion predicts a batch from score.source.

    Predictions go to paths.scores (one Parquet file per run) and to the prediction log.
    Score a file: -S score.source.kind=file -S score.source.file.path=new_customers.csv
    """
    with session("score", params, debug, prefect=True) as s:
        load(params, set_)
        from flows.scoring import batch_scoring

        s.prefect_ready()
        result = batch_scoring(params_path=str(params.resolve()), overrides=overrides_of(set_))
    console.print(
        f"scored {result.rows:,} rows with {result.model_name} v{result.model_version} "
        f"(@{result.alias}) -> {result.path}",
        markup=False,
    )
