"""Process set-up for entry points (CLI, tests, servers): environment defaults.

Nothing here runs on import; entry points call :func:`configure_environment` first.
"""

from __future__ import annotations

import os
from pathlib import Path

# Nothing phones home: Prefect, MLflow, DVC, GX and Evidently telemetry off.
TELEMETRY_OFF = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DVC_NO_ANALYTICS": "1",
    "GX_ANALYTICS_ENABLED": "false",
    "EVIDENTLY_DISABLE_TELEMETRY": "1",
}


def configure_environment(project_root: Path | None = None) -> None:
    """Set defaults that callers did not set themselves (never overrides the environment).

    With ``project_root``, Prefect keeps its state (the embedded SQLite API database) in
    ``<root>/.prefect``, so a fresh clone needs no server and leaves nothing in ``$HOME``.
    """
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "loopml,loopml_cli,tasks,flows")
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # links: summary
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bars in logs
    if project_root is not None:
        os.environ.setdefault("PREFECT_HOME", str((project_root / ".prefect").resolve()))


THREAD_POOLS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""The variables native thread pools read when their library loads."""


def limit_native_threads(threads: int) -> None:
    """Cap the native thread pools of this process (OpenMP, BLAS, torch) at ``threads``.

    For a model server: it runs one process per core and batches concurrent requests, so
    threads inside one small prediction only contend for the cores (OpenMP workers spin while
    they wait). Sets the variables for libraries loaded later and for child processes (server
    workers), and limits the libraries loaded so far (for OpenMP only in the calling thread:
    call it before the model's libraries load, as ``loopml serve`` does).
    """
    import sys

    from threadpoolctl import threadpool_limits

    for name in THREAD_POOLS:
        os.environ[name] = str(threads)
    threadpool_limits(limits=threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
