"""Secrets: URLs are redacted wherever they are shown; credentials in params.yaml must be
``${VAR}`` references, expanded in memory only; a failed webhook logs its redacted URL."""

from __future__ import annotations

import logging
import socket

import pytest

from loopml.config import deep_merge, params_from_dict
from loopml.exceptions import ConfigError
from loopml.monitoring.record import notify
from loopml.secrets import expand, has_credentials, redact, redact_url
from tests.conftest import small_params


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://bob:pw@db:5432/x", "postgresql://bob:***@db:5432/x"),
        ("postgresql://bob:p@ss@w@rd@db/x", "postgresql://bob:***@db/x"),  # '@' in the password
        ("mysql://bob:p%40ss@db/x", "mysql://bob:***@db/x"),
        ("postgresql://db/x?user=bob&password=pw&sslmode=require",
         "postgresql://db/x?user=bob&password=***&sslmode=require"),
        ("https://api.example.org/data.csv?token=abc&day=1",
         "https://api.example.org/data.csv?token=***&day=1"),
        ("https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/***"),
        ("postgresql://bob@db/x", "postgresql://bob@db/x"),
        ("sqlite:///mlflow.db", "sqlite:///mlflow.db"),
    ],
)  # fmt: skip
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
    assert has_credentials(url) == (url != expected)


def test_redact_finds_every_url_in_a_message() -> None:
    text = "could not reach postgresql://u:s3cr3t@h/d (timeout); also https://x.io/?key=k3y"
    assert "s3cr3t" not in redact(text) and "k3y" not in redact(text)
    assert "postgresql://u:***@h/d" in redact(text)


def test_expand_reads_the_environment_and_names_a_missing_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOOPML_T_URL", "postgresql://u:pw@h/d")
    assert expand("${LOOPML_T_URL}", "data.source.sql.url") == "postgresql://u:pw@h/d"
    monkeypatch.delenv("LOOPML_T_URL")
    with pytest.raises(ConfigError, match=r"data.source.sql.url: .*LOOPML_T_URL is not set"):
        expand("${LOOPML_T_URL}", "data.source.sql.url")


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"data": {"source": {"kind": "sql", "sql": {"url": "pg://u:pw@h/d", "query": "q"}}}},
         "data.source.sql.url"),
        ({"score": {"source": {"kind": "sql", "sql": {"url": "mysql://u:pw@h/d", "query": "q"}}}},
         "score.source.sql.url"),
        ({"data": {"source": {"kind": "url", "url": {"url": "https://x.io/d.csv?token=pw"}}}},
         "data.source.url.url"),
        ({"monitor": {"webhook_url": "https://hooks.slack.com/services/T/B/pw"}},
         "monitor.webhook_url"),
    ],
)  # fmt: skip
def test_a_literal_credential_in_params_is_refused_with_its_key(override: dict, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        params_from_dict(deep_merge(small_params(), override))
    message = str(info.value)
    assert f"{key}: holds a credential in plain text" in message
    assert ":pw@" not in message and "=pw" not in message and "/pw" not in message


def test_a_reference_is_accepted_and_kept_as_written() -> None:
    ref = {"kind": "sql", "sql": {"url": "${LOOPML_DB_URL}", "query": "SELECT 1"}}
    params = params_from_dict(deep_merge(small_params(), {"data": {"source": ref}}))
    assert params.data.source.sql is not None
    assert params.data.source.sql.url == "${LOOPML_DB_URL}"
    assert "${LOOPML_DB_URL}" in str(params.model_dump())


def test_a_failed_webhook_logs_only_the_redacted_url(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LOOPML_T_HOOK", f"http://127.0.0.1:{port}/hook?token=hook-s3cret")
    with caplog.at_level(logging.WARNING):
        assert notify("${LOOPML_T_HOOK}", "retraining is due") is False
        assert notify(f"http://127.0.0.1:{port}/hook?token=hook-s3cret", "again") is False
    assert "webhook" in caplog.text and "token=***" in caplog.text
    assert "hook-s3cret" not in caplog.text
