"""A run with a secret leaves it nowhere: `loopml run` on a PostgreSQL source whose URL (with a
password) comes from an environment variable, once succeeding and once failing; then the
password is searched for in the Prefect database, the MLflow store and artifacts, every file of
the project (logs included) and the console output."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
import yaml

from loopml.datagen import generate_churn
from tests.conftest import make_dvc_repo, run_cli, small_params

PG_URL = os.environ.get("LOOPML_TEST_POSTGRES_URL")
PASSWORD = "Zq7@leak-S3cret"  # trust authentication accepts any password
pytestmark = [
    pytest.mark.slow,
    pytest.mark.db,
    pytest.mark.skipif(not PG_URL, reason="LOOPML_TEST_POSTGRES_URL is not set"),
]


def _forms(secret: str) -> list[bytes]:
    return [secret.encode(), quote(secret, safe="").encode(), quote(secret).encode()]


def _found_in(root: Path, secret: str) -> list[str]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if any(form in data for form in _forms(secret)):
                hits.append(str(path.relative_to(root)))
    return hits


def test_a_secret_from_the_environment_is_stored_nowhere(
    tmp_path: Path, env: dict[str, str], pg_table: Callable[[pd.DataFrame], str]
) -> None:
    table = pg_table(generate_churn(1500, seed=5))
    user_host = PG_URL.removeprefix("postgresql://")  # type: ignore[union-attr]
    user, host = user_host.split("@", 1)
    secret_url = f"postgresql://{user}:{quote(PASSWORD, safe='')}@{host}"
    repo = make_dvc_repo(tmp_path / "project")
    raw = small_params(
        data={
            "source": {
                "kind": "sql",
                "sql": {"url": "${LOOPML_TEST_DB_URL}", "query": f'SELECT * FROM "{table}"'},
            }
        },
        train={"candidates": [{"name": "logreg", "kind": "linear"}]},
        promote={"floors": {}},
    )
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    env["LOOPML_TEST_DB_URL"] = secret_url

    ok = run_cli("run", "-p", str(repo / "params.yaml"), cwd=repo, env=env, timeout=900)
    assert ok.returncode == 0, (ok.stdout + ok.stderr)[-3000:]
    bad = run_cli(
        "run", "-p", str(repo / "params.yaml"), "-S", "data.source.sql.query=SELECT * FROM nope",
        cwd=repo, env=env, timeout=900,
    )  # fmt: skip
    said = bad.stdout + bad.stderr
    assert bad.returncode != 0 and "query failed" in said, said[-2000:]

    # the search works: it finds the secret where it is on purpose
    (tmp_path / "canary.txt").write_text(secret_url)
    assert _found_in(tmp_path, PASSWORD) == ["canary.txt"]
    (tmp_path / "canary.txt").unlink()
    assert list((tmp_path / "prefect_home").rglob("*.db")), "no Prefect database to search"
    assert (repo / "mlflow.db").is_file() and (repo / "mlartifacts").is_dir()
    assert not _found_in(tmp_path, PASSWORD)  # Prefect db, MLflow db + artifacts, logs, data
    for output in (ok.stdout, ok.stderr, said):
        assert not any(form.decode() in output for form in _forms(PASSWORD))
