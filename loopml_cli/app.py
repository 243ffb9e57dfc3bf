"""The ``loopml`` Typer app and what its commands share: options, set-up, loading, failing.

Heavy imports happen inside commands, after the environment is set.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from loopml.config import Params

app = typer.Typer(
    name="loopml",
    help="Closed-loop MLOps for tabular ML: collect -> validate -> features -> train -> "
    "evaluate -> promote, as Prefect flows over DVC, Great Expectations and MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)
log = logging.getLogger("loopml_cli")

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


def setup(params_path: Path, verbose: bool = False) -> None:
    """Environment defaults for the project of ``params_path``, logging, pipeline code."""
    from loopml.runtime import configure_environment, configure_logging
    from loopml_cli import use_pipeline_code

    configure_environment(params_path.resolve().parent)
    configure_logging(verbose)
    use_pipeline_code()


def overrides_of(assignments: list[str] | None) -> dict[str, object]:
    from loopml.config import parse_dotted

    return parse_dotted(assignments or [])


def load(params_path: Path, assignments: list[str] | None = None) -> Params:
    """``params.yaml`` with the ``-S`` overrides, validated."""
    from loopml.config import load_params

    return load_params(params_path, overrides_of(assignments))


def fail(exc: BaseException) -> NoReturn:
    """One line (or one block) on stderr naming what went wrong; exit code 2."""
    console.print("error:", style="bold red", end=" ")
    console.print(str(exc), markup=False, highlight=False)
    raise typer.Exit(code=2) from None
