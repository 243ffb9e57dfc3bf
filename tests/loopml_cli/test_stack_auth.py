"""The credentials `loopml up`, `ui` and `serve` read from the environment, and the bind rule:
anything but loopback needs every server authenticated. Pure functions, plus the commands'
refusal on real processes (nothing is started, nothing is written)."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from loopml.config import load_params
from loopml.exceptions import ConfigError
from loopml_cli import stack_auth
from tests.conftest import run_cli

FULL = {
    "MLFLOW_TRACKING_USERNAME": "ops",
    "MLFLOW_TRACKING_PASSWORD": "s3cret-mlflow",
    "PREFECT_API_AUTH_STRING": "ops:s3cret-prefect",
    "LOOPML_API_TOKEN": "s3cret-token",
}


def test_nothing_configured_is_allowed_on_loopback_only() -> None:
    auth = stack_auth.read_auth({}, "LOOPML_API_TOKEN")
    assert (auth.mlflow, auth.prefect, auth.model) == (False, False, False)
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        stack_auth.check_bind(host, auth, "up")  # no error
    for host in ("0.0.0.0", "10.1.2.3", "example.org"):
        with pytest.raises(ConfigError) as err:
            stack_auth.check_bind(host, auth, "up")
        message = str(err.value)
        for name in ("MLFLOW_TRACKING_PASSWORD", "PREFECT_API_AUTH_STRING", "LOOPML_API_TOKEN"):
            assert name in message
        assert f"--host {host}" in message and "127.0.0.1" in message


def test_every_credential_set_allows_any_address() -> None:
    auth = stack_auth.read_auth(FULL, "LOOPML_API_TOKEN")
    assert (auth.mlflow, auth.prefect, auth.model) == (True, True, True)
    assert auth.missing() == []
    stack_auth.check_bind("0.0.0.0", auth, "up")


def test_one_missing_credential_is_named_alone() -> None:
    env = {k: v for k, v in FULL.items() if k != "PREFECT_API_AUTH_STRING"}
    auth = stack_auth.read_auth(env, "LOOPML_API_TOKEN")
    assert auth.missing() == ["PREFECT_API_AUTH_STRING (user:password)"]
    stack_auth.check_bind("0.0.0.0", auth, "serve", services=("model",))  # serve needs the token
    with pytest.raises(ConfigError, match="PREFECT_API_AUTH_STRING"):
        stack_auth.check_bind("0.0.0.0", auth, "up")


def test_the_token_variable_follows_serve_token_env() -> None:
    auth = stack_auth.read_auth({**FULL, "TEAM_TOKEN": ""}, "TEAM_TOKEN")
    assert auth.missing() == ["TEAM_TOKEN"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"MLFLOW_TRACKING_USERNAME": "ops"}, "set both or neither"),
        ({"MLFLOW_TRACKING_PASSWORD": "x"}, "set both or neither"),
        (
            {"MLFLOW_TRACKING_USERNAME": "a", "MLFLOW_TRACKING_PASSWORD": "password1234"},
            "old default password",
        ),
        ({"PREFECT_API_AUTH_STRING": "no-colon"}, "expected user:password"),
    ],
)
def test_unusable_credentials_are_refused_by_name(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        stack_auth.read_auth(env, "LOOPML_API_TOKEN")


def test_the_mlflow_auth_file_holds_no_secret(tmp_path: Path) -> None:
    auth = stack_auth.read_auth(FULL, "LOOPML_API_TOKEN")
    extra = stack_auth.mlflow_auth_env(auth, FULL, tmp_path / "runtime")
    ini = Path(extra["MLFLOW_AUTH_CONFIG_PATH"])
    text = ini.read_text()
    assert "s3cret" not in text and "database_uri = sqlite:///" in text
    assert stat.S_IMODE(ini.stat().st_mode) == 0o600
    assert extra["MLFLOW_AUTH_ADMIN_PASSWORD"] == "s3cret-mlflow"  # only in the environment
    assert stack_auth.prefect_server_env(auth, FULL) == {
        "PREFECT_SERVER_API_AUTH_STRING": "ops:s3cret-prefect"
    }
    nothing = stack_auth.read_auth({}, "LOOPML_API_TOKEN")
    assert stack_auth.mlflow_auth_env(nothing, {}, tmp_path / "other") == {}
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize(
    ("command", "names"),
    [
        (["up", "--host", "0.0.0.0"], ["MLFLOW_TRACKING_USERNAME", "PREFECT_API_AUTH_STRING"]),
        (["serve", "--host", "0.0.0.0"], ["LOOPML_API_TOKEN"]),
        (["ui", "--host", "0.0.0.0"], ["MLFLOW_TRACKING_PASSWORD"]),
    ],
)
def test_commands_refuse_an_open_address_and_start_nothing(
    write_params: Callable[..., Path], env: dict[str, str], command: list[str], names: list[str]
) -> None:
    params_path = write_params()
    for key in FULL:
        env.pop(key, None)
    done = run_cli(*command, "--params", str(params_path), cwd=params_path.parent, env=env)
    said = done.stdout + done.stderr
    assert done.returncode == 2, said
    assert "Traceback" not in said
    for name in names:
        assert name in said
    runtime = load_params(params_path).path("runtime")
    assert list(runtime.glob("*")) == [] if runtime.exists() else not runtime.exists()


def test_the_native_and_compose_auth_files_agree_on_every_setting_but_the_store(
    tmp_path: Path,
) -> None:
    """The native stack writes its ini; compose mounts stack/mlflow-auth.ini. Both remember a
    verified password (MLflow's auth cache) and differ only in where the user database is."""
    import configparser

    from loopml_cli import CODE_ROOT

    auth = stack_auth.read_auth(FULL, "LOOPML_API_TOKEN")
    native = configparser.ConfigParser()
    native.read(stack_auth.mlflow_auth_env(auth, FULL, tmp_path)["MLFLOW_AUTH_CONFIG_PATH"])
    compose = configparser.ConfigParser()
    compose.read(CODE_ROOT / "stack" / "mlflow-auth.ini")
    drop = {"database_uri"}
    settings = {k: v for k, v in native["mlflow"].items() if k not in drop}
    assert settings == {k: v for k, v in compose["mlflow"].items() if k not in drop}
    assert int(settings["auth_cache_ttl_seconds"]) == stack_auth.AUTH_CACHE_SECONDS > 0
