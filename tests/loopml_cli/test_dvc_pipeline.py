"""The DVC pipeline runs the same stage flows as `loopml run`: `dvc repro` runs every stage,
a second `dvc repro` skips everything after collect (whose source DVC cannot see), and
`dvc exp run -S` re-runs the stages that use the changed key."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from loopml.candidates import TrainedCandidates
from loopml.config import load_params
from loopml.tracking import setup_tracking
from tests.conftest import REPO_ROOT, make_dvc_repo, prefect_home, small_params

pytestmark = pytest.mark.slow
STAGES = ("collect", "validate", "features", "train", "evaluate")


def _dvc(args: list[str], repo: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _git(args: list[str], repo: Path) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_repro_twice_then_an_experiment(tmp_path: Path) -> None:
    repo = make_dvc_repo(tmp_path / "project")
    shutil.copy(REPO_ROOT / "dvc.yaml", repo / "dvc.yaml")
    (repo / "loopml").symlink_to(REPO_ROOT / "loopml")  # the code the stages depend on
    raw = small_params()
    raw["train"]["candidates"] = [
        {"name": "logreg", "kind": "linear"},
        {"name": "mlp", "kind": "lightning"},
    ]
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    _git(["add", "-A"], repo)
    _git(["commit", "-qm", "project"], repo)
    env = {
        **os.environ,
        "PREFECT_HOME": prefect_home(tmp_path / "prefect_home"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    env.pop("PREFECT_API_URL", None)

    first = _dvc(["repro"], repo, env)
    for stage in STAGES:
        assert f"Running stage '{stage}'" in first, first
    params = load_params(repo / "params.yaml")
    trained = TrainedCandidates.read(params.path("models") / "candidates.json")
    assert [c.name for c in trained.candidates] == ["logreg", "mlp"]
    metrics = json.loads((params.path("reports") / "metrics.json").read_text())
    assert metrics["best"] == trained.selected.name and 0.5 < metrics["test"]["roc_auc"] <= 1
    client = setup_tracking(params).client()
    run = client.get_run(
        trained.selected.run_id
    )  # train logged it, evaluate added the test metrics
    assert run.data.tags["mlflow.parentRunId"] == trained.parent_run_id
    assert "test_roc_auc" in run.data.metrics and "val_roc_auc" in run.data.metrics

    second = _dvc(["repro"], repo, env)
    for stage in STAGES[1:]:
        assert f"Stage '{stage}' didn't change, skipping" in second, second
    assert TrainedCandidates.read(params.path("models") / "candidates.json") == trained

    _git(["add", "-A"], repo)
    _git(["commit", "-qm", "first repro"], repo)
    experiment = _dvc(["exp", "run", "-S", "train.lightning.max_epochs=2"], repo, env)
    assert "Running stage 'train'" in experiment and "Running stage 'evaluate'" in experiment
    assert "Stage 'features' didn't change, skipping" in experiment
    shown = _dvc(["exp", "show", "--json"], repo, env)
    assert '"max_epochs": 2' in shown.replace(" ", "").replace('"max_epochs":2', '"max_epochs": 2')
