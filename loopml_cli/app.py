"""The ``loopml`` Typer app and what its commands share: options, set-up, loading, failing.

Heavy imports happen inside commands, after the environment is set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from loopml.config import Params
from loopml_cli.stop_signals import signal_of, stop_signals

if TYPE_CHECKING:
    from loopml_cli.prefect_api import EmbeddedApi

app = typer.Typer(
    name="loopml",
    help="Closed-loop MLOps for tabular ML: collect -> validate -> features -> train -> "
    "evaluate -> promote, as Prefect flows over DVC, Great Expectations and MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, soft_wrap=True)  # long paths stay on one line
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
DebugOpt = Annotated[
    bool,
    typer.Option(
        "--debug", "-d", help="Debug logging, Prefect's own output and tracebacks on the console."
    ),
]


@dataclass
class Session:
    """What a command's set-up gives it: its log file and the Prefect API it uses."""

    log_file: Path
    api: EmbeddedApi | None

    def prefect_ready(self) -> None:
        """Wait for the Prefect API; from now on Prefect's records go to the log file too."""
        from loopml_cli.logs import attach_prefect

        if self.api is not None:
            self.api.wait()
        attach_prefect()


@contextmanager
def session(
    command: str, params_path: Path, debug: bool = False, prefect: bool = False
) -> Iterator[Session]:
    """Set up a command (environment, logging, pipeline code, the Prefect API if ``prefect``)
    and turn every way it can end into one clear line on the console, the log file keeping the
    rest: a known error (exit 2), a stop by SIGINT/SIGTERM (130/143), anything else (1)."""
    from loopml.runtime import configure_environment
    from loopml_cli import use_pipeline_code
    from loopml_cli.logs import LOG_DIR, configure_logging, log_file_for
    from loopml_cli.prefect_api import EmbeddedApi, without_heartbeats

    project = params_path.resolve().parent
    configure_environment(project)
    log_file = log_file_for(project, command)
    configure_logging(log_file, debug)
    use_pipeline_code()
    api = None
    with stop_signals():
        if prefect:
            _use_stack_api(params_path)  # before EmbeddedApi reads PREFECT_API_URL
            api = EmbeddedApi(project / LOG_DIR / "prefect-api.log")
            api.start()
        try:
            with without_heartbeats() if api is not None and api.embedded else nullcontext():
                yield Session(log_file, api)
        except typer.Exit:
            raise
        except BaseException as exc:  # every way out gets one line; details in the log file
            _report(exc, log_file, debug, params_path)
        finally:
            if api is not None:
                api.stop()


def _use_stack_api(params_path: Path) -> None:
    """Point this process at the Prefect server of ``loopml up`` or ``loopml stack up`` when one
    runs for this project and no API is configured: no embedded start-up, and the run shows in
    that UI."""
    import os

    from loopml.config import load_params
    from loopml.exceptions import LoopmlError
    from loopml_cli.prefect_api import stack_api

    if os.environ.get("PREFECT_API_URL"):
        return
    try:
        run_dir = load_params(params_path).path("runtime")
    except (LoopmlError, OSError, ValueError):
        return  # the command reports a bad params file itself
    for started_by, folder in (("loopml up", run_dir), ("loopml stack up", run_dir / "stack")):
        url = stack_api(folder)
        if url is not None:
            os.environ["PREFECT_API_URL"] = url
            said = f"Prefect: the server of `{started_by}` at {url}"
            console.print(said, markup=False, style="dim")
            return


def _report(exc: BaseException, log_file: Path, debug: bool, params_path: Path) -> NoReturn:
    from loopml.exceptions import LoopmlError
    from loopml.tracking import unreachable_server

    log.debug("%s ended by %s", log_file.stem, type(exc).__name__, exc_info=exc)
    if (signum := signal_of(exc)) is not None:
        console.print("stopped: the run was cancelled", style="bold yellow")
        console.print(f"full log: {log_file}", markup=False, highlight=False)
        raise typer.Exit(code=128 + signum) from None
    if isinstance(exc, LoopmlError | RuntimeError | OSError):
        fail(str(exc).replace("<params.yaml>", str(params_path)), log_file)
    if (outage := unreachable_server(exc)) is not None:
        fail(outage, log_file)
    if debug:
        console.print_exception()
    console.print("error:", style="bold red", end=" ")
    console.print(
        f"unexpected {type(exc).__name__}: {exc}\nfull traceback: {log_file}",
        markup=False,
        highlight=False,
    )
    raise typer.Exit(code=1) from None


def overrides_of(assignments: list[str] | None) -> dict[str, object]:
    from loopml.config import parse_dotted

    return parse_dotted(assignments or [])


def load(params_path: Path, assignments: list[str] | None = None) -> Params:
    """``params.yaml`` with the ``-S`` overrides, validated."""
    from loopml.config import load_params

    return load_params(params_path, overrides_of(assignments))


def fail(exc: BaseException | str, log_file: Path | None = None) -> NoReturn:
    """One line (or one block) on stderr naming what went wrong; exit code 2."""
    console.print("error:", style="bold red", end=" ")
    console.print(str(exc), markup=False, highlight=False)
    if log_file is not None:
        console.print(f"full log: {log_file}", markup=False, highlight=False)
    raise typer.Exit(code=2) from None
