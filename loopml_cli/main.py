"""The ``loopml`` console entry point: every command module registered on one Typer app."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import NoReturn

from loopml_cli import (  # noqa: F401 (commands)
    demo,
    deployments,
    operations,
    pipeline,
    server_stack,
    stack,
)
from loopml_cli.app import app


def main() -> None:
    """Run the command, then leave as soon as everything it produced is delivered."""
    code: int | str | None = 0
    try:
        app()
    except KeyboardInterrupt:
        code = 130
    except SystemExit as exc:
        code = exc.code
    leave(code)


def leave(code: int | str | None) -> NoReturn:
    """Exit without the interpreter's teardown, which costs about 5 s once torch, MLflow and
    Prefect are loaded (measured on a `loopml run`: 40.9 s wall against 34.6 s), after
    delivering what that teardown would: Prefect's logs and events to its API, MLflow's
    asynchronous logging (an MLflow run still open is ended), the log files and the console."""
    from loopml_cli.prefect_api import drain_prefect

    drain_prefect()
    if (mlflow := sys.modules.get("mlflow")) is not None:
        with contextlib.suppress(Exception):
            mlflow.flush_async_logging()
            while mlflow.active_run() is not None:
                mlflow.end_run("FINISHED" if code in (0, None) else "FAILED")
    if isinstance(code, str):  # sys.exit("message")
        sys.stderr.write(code + "\n")
        code = 1
    logging.shutdown()
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    main()
