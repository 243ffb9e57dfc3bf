"""The deployments of ``flows/deployments.py``: served by ``loopml deploy`` (schedules and
default parameters from params.yaml), and rendered as ``prefect.yaml`` for work pools."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from loopml.config import Params
from loopml_cli.app import ParamsOpt, SetOpt, app, console, load, session

WORK_POOL = "loopml"
PREFECT_YAML_HEADER = """\
# Work-pool deployments for the production stack (a Prefect server and workers).
# Generated from flows/deployments.py by `loopml deployments --write`; do not edit by hand.
#   prefect work-pool create loopml --type process
#   prefect deploy --all            # from the repository root, with PREFECT_API_URL set
#   prefect worker start --pool loopml
# Locally, `loopml up` serves the same deployments without a work pool (`loopml deploy`).
"""


def _flow(entrypoint: str) -> Any:
    path, name = entrypoint.split(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return getattr(module, name)


def build_deployments(params: Params, params_path: Path) -> list[Any]:
    """Runner deployments of every declared deployment, for ``prefect.serve``."""
    from prefect.schedules import Cron

    from flows.deployments import DEPLOYMENTS

    parameters = {"params_path": str(params_path.resolve())}
    built = []
    for spec in DEPLOYMENTS:
        cron = spec.cron(params)
        built.append(
            _flow(spec.entrypoint).to_deployment(
                name=spec.name,
                parameters=parameters,
                schedules=[Cron(cron, timezone=params.deploy.timezone)] if cron else None,
                description=spec.description,
                tags=["loopml", params.project.name],
                concurrency_limit=spec.concurrency_limit,
            )
        )
    return built


def serve_deployments(params: Params, params_path: Path) -> None:
    """Register the deployments with their schedules and run their flows as they come (blocks)."""
    from prefect import serve

    serve(*build_deployments(params, params_path), limit=3)


def render_prefect_yaml(params: Params) -> str:
    """``prefect.yaml`` for a work pool, from the same declarations and schedules."""
    from importlib.metadata import version

    from flows.deployments import DEPLOYMENTS

    deployments = []
    for spec in DEPLOYMENTS:
        entry: dict[str, Any] = {
            "name": spec.name,
            "entrypoint": spec.entrypoint,
            "description": spec.description,
            "parameters": {"params_path": "params.yaml"},
        }
        cron = spec.cron(params)
        if cron:
            entry["schedules"] = [{"cron": cron, "timezone": params.deploy.timezone}]
        if spec.concurrency_limit is not None:
            entry["concurrency_limit"] = {
                "limit": spec.concurrency_limit,
                "collision_strategy": "ENQUEUE",
            }
        entry["work_pool"] = {"name": WORK_POOL}
        entry["tags"] = ["loopml"]
        deployments.append(entry)
    body = {
        "name": "loopml",
        "prefect-version": ".".join(version("prefect").split(".")[:2]),
        "pull": [
            {
                "prefect.deployments.steps.set_working_directory": {
                    "directory": "{{ $LOOPML_PROJECT_DIR }}"
                }
            }
        ],
        "deployments": deployments,
    }
    return PREFECT_YAML_HEADER + yaml.safe_dump(body, sort_keys=False, width=100)


@app.command()
def deploy(params: ParamsOpt = Path("params.yaml"), set_: SetOpt = None) -> None:
    """Serve the training, monitoring and batch-scoring deployments (schedules from
    params.yaml); blocks."""
    with session("deploy", params, prefect=True) as s:
        p = load(params, set_)
        s.prefect_ready()
        serve_deployments(p, params.resolve())


@app.command()
def deployments(
    params: ParamsOpt = Path("params.yaml"),
    write: Annotated[
        bool, typer.Option("--write", help="Write prefect.yaml beside params.yaml.")
    ] = False,
) -> None:
    """Print (or --write) prefect.yaml: the declared deployments for a work pool."""
    with session("deployments", params):
        text = render_prefect_yaml(load(params))
    if write:
        target = params.resolve().parent / "prefect.yaml"
        target.write_text(text)
        console.print(f"wrote {target}", markup=False)
    else:
        typer.echo(text, nl=False)
