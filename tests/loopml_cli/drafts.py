"""Helpers of the `loopml init --from` tests: draft, run the draft unedited, read its metrics."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from loopml.config import load_params
from tests.conftest import REPO_ROOT, run_cli


def init_and_run(
    source: str, project: Path, env: dict[str, str], *init_args: str
) -> tuple[dict, str]:
    """Draft, then run the draft as it is; returns the DVC metrics of the run and its output."""
    params = project / "params.yaml"
    drafted = run_cli(
        "init", "--from", source, "-p", str(params), *init_args, cwd=project.parent, env=env,
        timeout=300,
    )  # fmt: skip
    assert drafted.returncode == 0, drafted.stdout + drafted.stderr
    assert (project / ".dvc").is_dir()  # git and DVC set up where the file lives
    ran = run_cli("run", "-p", str(params), cwd=project.parent, env=env, timeout=1500)
    said = ran.stdout + ran.stderr
    assert ran.returncode == 0, said[-4000:]
    reports = load_params(params).path("reports") / "metrics.json"
    return json.loads(reports.read_text()), said


def example_metrics(name: str, source: Path, tmp_path: Path, env: dict[str, str]) -> dict:
    """The shipped example, on the same data, its gradient-boosting candidate (its best)."""
    raw = yaml.safe_load((REPO_ROOT / "examples" / name / "params.yaml").read_text())
    raw["data"]["source"]["file"]["path"] = str(source)
    raw["train"]["candidates"] = [c for c in raw["train"]["candidates"] if c["kind"] != "lightning"]
    project = tmp_path / f"example-{name}"
    project.mkdir()
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    assert run_cli("init", "-p", str(project / "params.yaml"), cwd=project, env=env).returncode == 0
    ran = run_cli("run", "-p", str(project / "params.yaml"), cwd=project, env=env, timeout=1500)
    assert ran.returncode == 0, (ran.stdout + ran.stderr)[-3000:]
    return json.loads((project / "reports" / "metrics.json").read_text())
