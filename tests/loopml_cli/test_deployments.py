"""The deployments are declared once: prefect.yaml is generated from the same table that
`loopml deploy` serves, and the committed file is the generated one."""

from __future__ import annotations

from pathlib import Path

import yaml

from flows.deployments import DEPLOYMENTS
from loopml.config import load_params
from loopml_cli.deployments import build_deployments, render_prefect_yaml
from tests.conftest import REPO_ROOT


def test_committed_prefect_yaml_is_generated_from_the_table() -> None:
    params = load_params(REPO_ROOT / "params.yaml")
    committed = (REPO_ROOT / "prefect.yaml").read_text()
    assert committed == render_prefect_yaml(params), "run `loopml deployments --write`"
    spec = yaml.safe_load(committed)
    assert [d["name"] for d in spec["deployments"]] == [d.name for d in DEPLOYMENTS]
    for declared, rendered in zip(DEPLOYMENTS, spec["deployments"], strict=True):
        path, name = declared.entrypoint.split(":")
        assert (REPO_ROOT / path).is_file() and f"def {name}(" in (REPO_ROOT / path).read_text()
        assert rendered["entrypoint"] == declared.entrypoint
        cron = declared.cron(params)
        assert rendered.get("schedules", []) == (
            [{"cron": cron, "timezone": params.deploy.timezone}] if cron else []
        )


def test_served_deployments_are_the_same_table(tmp_path: Path) -> None:
    raw = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    raw["deploy"]["timezone"] = "Europe/Paris"
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    params = load_params(path)
    built = build_deployments(params, path)
    assert [d.name for d in built] == [d.name for d in DEPLOYMENTS]
    training = built[0]
    assert training.parameters == {"params_path": str(path.resolve())}
    [schedule] = training.schedules
    assert schedule.schedule.cron == params.deploy.training_cron
    assert schedule.schedule.timezone == "Europe/Paris"  # deploy.timezone is used
    assert [d.schedules for d in built][2] in ([], None)  # score.schedule_cron is null
