"""Where a command's output goes: our progress to the console; everything (Prefect's run
states and tracebacks included) to a log file; the console shows a traceback only with
``--debug``."""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from rich.logging import RichHandler

OUR_LOGGERS = ("loopml", "loopml_cli", "tasks", "flows")
NOISY = ("great_expectations", "dvc", "mlflow", "alembic", "httpx")
LOG_DIR = Path(".loopml") / "logs"
"""Relative to the project (the folder of params.yaml)."""

_FORMAT = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
_state: dict[str, logging.Handler] = {}


def log_file_for(project: Path, command: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return project / LOG_DIR / f"{command}-{stamp}-{os.getpid()}.log"


def configure_logging(log_file: Path, debug: bool = False) -> None:
    """Our loggers to the console (INFO; DEBUG with ``debug``) and everything to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(log_file)
    to_file.setFormatter(_FORMAT)
    console = RichHandler(show_path=False, rich_tracebacks=debug, markup=False)
    _state.update(file=to_file, console=console)
    logging.getLogger().addHandler(to_file)
    logging.getLogger().setLevel(logging.INFO)
    for name in OUR_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG if debug else logging.INFO)
        logger.addHandler(console)
        logger.addHandler(to_file)
        logger.propagate = False
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.WARNING)
    if not debug:
        # Prefect's console handler prints run states and tracebacks: the file has them.
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


def attach_prefect() -> None:
    """After Prefect configured its logging (which replaces the root's handlers): its records
    go to the log file too."""
    from prefect.logging.configuration import ensure_logging_setup

    ensure_logging_setup()
    to_file = _state.get("file")
    if to_file is None:
        return
    root = logging.getLogger()  # prefect.* loggers propagate to it
    if to_file not in root.handlers:
        root.addHandler(to_file)
