"""Shared fixtures: real DVC repositories in temporary git folders, real Prefect (test harness)."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopml.runtime import configure_environment

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared" / "datasets"
BASE_PARAMS = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())


# The kind of each test, from where it lives (besides markers set in the modules themselves).
KINDS = {
    "architecture": "code",
    "loopml": "code",
    "tasks": "code",
    "flows": "flow",
    "loopml_cli": "flow",
    "data": "data",
    "model": "model",
    "browser": "browser",
}
SUBKINDS = {"serving": "serving", "monitoring": "monitoring"}


def pytest_configure(config: pytest.Config) -> None:
    configure_environment()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(item.path).relative_to(REPO_ROOT / "tests").parts
        kind = KINDS.get(parts[0])
        if kind:
            item.add_marker(getattr(pytest.mark, kind))
        for part in parts[1:-1]:
            if part in SUBKINDS:
                item.add_marker(getattr(pytest.mark, SUBKINDS[part]))


def needs_shared(*parts: str) -> Any:
    path = SHARED.joinpath(*parts)
    return pytest.mark.skipif(
        not path.exists(), reason=f"real dataset not available: {path} (../shared is absent)"
    )


def _git(args: list[str], cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def make_dvc_repo(path: Path) -> Path:
    """A real git + DVC repository with a local folder remote, as `loopml init` makes it."""
    from loopml.project import init_project

    path.mkdir(parents=True, exist_ok=True)
    _git(["init", "-q"], path)
    _git(["config", "user.email", "test@loopml.local"], path)
    _git(["config", "user.name", "loopml tests"], path)
    init_project(path)
    return path


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    return make_dvc_repo(tmp_path / "project")


def small_params(**overrides: Any) -> dict[str, Any]:
    """The shipped params.yaml with a small generator batch, updated by nested overrides."""
    from loopml.config import deep_merge

    base = deep_merge(BASE_PARAMS, {"data": {"source": {"generator": {"n_rows": 3000}}}})
    base = deep_merge(base, {"paths": {"suite": "gx/suite.json"}, "validate": {"data_docs": False}})
    base = deep_merge(
        base,
        {
            "train": {"lightning": {"max_epochs": 3, "hidden_sizes": [32]}},
            "evaluate": {
                "bootstrap_resamples": 50,
                "permutation_repeats": 1,
                "permutation_max_rows": 300,
            },
        },
    )
    return deep_merge(base, overrides)


@pytest.fixture
def write_params(dvc_repo: Path) -> Callable[..., Path]:
    """Write a params.yaml into the temporary DVC project; returns its path."""

    def _write(raw: dict[str, Any] | None = None, **overrides: Any) -> Path:
        data = raw if raw is not None else small_params(**overrides)
        path = dvc_repo / "params.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return _write


MLFLOW_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@pytest.fixture(autouse=True)
def _isolated_mlflow() -> Iterator[None]:
    """Every test uses the store its params.yaml names (inside its temporary project).

    MLflow's own setters write these variables, and module-scoped fixtures run before this
    one: so they are cleared after every test too, not only before it.
    """
    for key in MLFLOW_ENV:
        os.environ.pop(key, None)
    yield
    for key in MLFLOW_ENV:
        os.environ.pop(key, None)


_PREFECT_START = (
    "from pathlib import Path\nfrom loopml_cli.prefect_api import EmbeddedApi\n"
    "api = EmbeddedApi(Path('prefect-api.log'))\napi.start()\napi.wait(300)\napi.stop()\n"
)
_prefect_template: list[Path] = []


def prefect_home(path: Path) -> str:
    """A new Prefect home at ``path`` for a test's commands and servers, as a copy of one whose
    database a Prefect server migrated and started on once in this test process.

    A new home costs a server about ten seconds of CPU more on its first start (the database
    migrations, block types registered), paid by every test that starts one; what the tests
    check is loopml's start-up and runs, not Prefect's migrations (`bench/bench_cli.py`,
    `test_up_down.py` and `test_signals.py` still start on an empty home, as a new user does;
    in `test_signals.py` the SIGINT test's run did not stop on a copied home)."""
    if path.exists():  # made by an earlier call of this test (a server may be using it)
        return str(path)
    if not _prefect_template:
        template = Path(tempfile.mkdtemp(prefix="loopml-test-prefect-home-"))
        atexit.register(shutil.rmtree, template, ignore_errors=True)
        env = {**os.environ, "PREFECT_HOME": str(template)}
        env.pop("PREFECT_API_URL", None)
        subprocess.run(
            [sys.executable, "-c", _PREFECT_START], cwd=template, env=env, check=True, timeout=600
        )
        _prefect_template.append(template)
    shutil.copytree(_prefect_template[0], path, ignore=shutil.ignore_patterns("*.log"))
    return str(path)


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A real Prefect API on a temporary SQLite database, for the whole session; no flow-run
    heartbeats, as under the embedded API of a ``loopml`` command."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect_home"))
    from prefect.testing.utilities import prefect_test_harness

    from loopml_cli.prefect_api import without_heartbeats

    with prefect_test_harness(server_startup_timeout=120), without_heartbeats():
        yield


@pytest.fixture
def churn_frame() -> Any:
    from loopml.datagen import generate_churn

    return generate_churn(3000, seed=7)


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "loopml_cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


@pytest.fixture
def copy_dataset(tmp_path: Path) -> Callable[[str], Path]:
    def _copy(*parts: str) -> Path:
        src = SHARED.joinpath(*parts)
        dst = tmp_path / "shared_copy" / src.name
        if src.is_dir():
            shutil.copytree(src, dst)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(src, dst)
        return dst

    return _copy


from tests.registry import registry  # noqa: E402,F401  (session fixture: a small real registry)
