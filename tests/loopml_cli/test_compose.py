"""docker-compose.yml, checked statically (no Docker engine here): it is what the stack
definition renders, valid against the Compose Specification's JSON schema, every secret is
required, every published port is bound to 127.0.0.1 unless configured, and its services have
the same commands and environment as the native stack's, both read from one definition."""

from __future__ import annotations

import json
import re
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from loopml_cli import CODE_ROOT, topology
from loopml_cli.compose import ADDRESSES, render_compose, required
from loopml_cli.server_stack import NativeStack, native_command, native_environment

COMPOSE = CODE_ROOT / "docker-compose.yml"
SPEC_WHEEL = CODE_ROOT / ".venv" / "share" / "compose-spec"
DEFAULTS = {"LOOPML_BIND": "127.0.0.1", "PREFECT_UI_API_URL": "http://127.0.0.1:4200/api"}


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def test_the_committed_file_is_what_the_definition_renders() -> None:
    assert COMPOSE.read_text() == render_compose(), "run `loopml stack compose --write`"


def test_it_is_valid_against_the_compose_specification() -> None:
    import jsonschema

    wheels = sorted(SPEC_WHEEL.glob("docker_compose-*.whl"))
    if not wheels:
        pytest.skip(f"no Compose Specification schema in {SPEC_WHEEL} (`make install` gets it)")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        schema = json.loads(wheel.read("compose/config/compose_spec.json"))
    jsonschema.Draft201909Validator(schema).validate(_compose())
    broken = _compose()
    broken["services"]["mlflow"]["depends_on"]["postgres"] = {"condition": "when_ready"}
    with pytest.raises(jsonschema.ValidationError):  # the check can fail
        jsonschema.Draft201909Validator(schema).validate(broken)


def test_every_secret_is_required_and_nothing_has_a_working_default() -> None:
    text = COMPOSE.read_text()
    references = re.findall(r"\$\{([^}]+)\}", text)
    for ref in references:
        name = re.split(r"[:?-]", ref)[0]
        if name in DEFAULTS:  # addresses, not secrets
            assert ref == f"{name}:-{DEFAULTS[name]}"
        else:
            assert ref == f"{name}:?set {name} in .env", ref
    used = {re.split(r"[:?-]", ref)[0] for ref in references}
    assert set(topology.SECRETS) <= used
    example = dict(
        line.split("=", 1)
        for line in (CODE_ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(topology.SECRETS) <= set(example)
    for name in topology.SECRETS:
        assert "change-me" in example[name], name  # placeholders, never working values


def test_published_ports_are_bound_to_loopback_unless_configured() -> None:
    published = {
        name: service["ports"]
        for name, service in _compose()["services"].items()
        if "ports" in service
    }
    assert set(published) == {"mlflow", "prefect", "model"}
    for ports in published.values():
        for port in ports:
            assert port.startswith("${LOOPML_BIND:-127.0.0.1}:"), port


def test_compose_and_the_native_stack_run_the_same_definition(tmp_path: Path) -> None:
    """Each part of each service's command and environment, in compose and natively, is the
    same part of the one definition rendered with that target's addresses."""
    compose = _compose()["services"]
    native = NativeStack(
        run_dir=tmp_path,
        postgres_url="postgresql://alice:pw@10.9.8.7:5433/postgres",
        ports={"s3": 19000, "mlflow": 15000, "prefect": 14200, "model": 18000},
    )
    addresses = native.addresses()
    secrets = {name: f"<{name}>" for name in topology.SECRETS}
    for service in topology.SERVICES:
        in_compose = compose[service.name]
        assert in_compose["command"] == [
            required(topology.render(part, ADDRESSES)) for part in service.command
        ]
        command = native_command(service, addresses)
        if service.command[0] in {"mlflow", "prefect"}:
            assert command[:2] == [sys.executable, "-m"]  # the same program, this interpreter
            command = command[2:]
        elif service.command[0] == "python":
            assert command[0] == sys.executable
            command = ["python", *command[1:]]
        expected = [topology.render(part, addresses) for part in service.command]
        if service.port is not None:  # natively, the port chosen for this stack
            at = expected.index("--port") + 1
            expected[at] = addresses[service.name].split(":")[1]
        assert command == expected, service.name
        env = native_environment(service, addresses, secrets)
        for key, value in service.environment.items():
            assert in_compose["environment"][key] == required(topology.render(value, ADDRESSES))
            native_value = topology.render(value, addresses)
            for name, placeholder in secrets.items():
                native_value = native_value.replace("${" + name + "}", placeholder)
            assert env[key] == native_value, (service.name, key)
    assert {s.name for s in topology.SERVICES} <= set(compose)


def test_the_init_script_creates_every_database_the_definition_uses() -> None:
    """Compose's PostgreSQL creates its databases from the init script; the native stack from
    ``topology.DATABASES``: the two lists are the same, and every ``{db_*}`` placeholder of
    the definition names one of them."""
    script = (CODE_ROOT / "stack" / "postgres-init.sql").read_text()
    created = re.findall(r"CREATE DATABASE (\w+);", script)
    assert created == list(topology.DATABASES)
    text = repr(topology.SERVICES) + repr(topology.RUNNER)
    used = set(re.findall(r"\{db_(\w+)\}", text))
    assert used == set(topology.DATABASES), used
