"""Fixtures of the command tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    out = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect_home"), "COLUMNS": "200"}
    for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        out.pop(key, None)
    return out
