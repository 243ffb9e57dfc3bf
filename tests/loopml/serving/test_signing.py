"""Models are verified before they are unpickled: promotion signs the champion's artifacts
(HMAC with LOOPML_SIGNING_KEY); the server refuses a version whose artifacts changed, keeps the
old champion and says why in /health; batch scoring's loader refuses it too; another key's
signature is refused; without a key models load as before, with a warning."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loopml.config import ServeConfig
from loopml.exceptions import IntegrityError
from loopml.integrity import DIGEST_TAG, SIGNATURE_TAG, SIGNING_KEY_ENV, sign_version
from loopml.registry import load_alias
from loopml.serving.app import create_app
from tests.registry import build_registry

NAME = "churn-classifier"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A registry whose champion (v1) was promoted with a signing key."""
    os.environ[SIGNING_KEY_ENV] = "key-one"
    try:
        yield build_registry(tmp_path_factory.mktemp("signed") / "project")
    finally:
        os.environ.pop(SIGNING_KEY_ENV, None)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SIGNING_KEY_ENV, "key-one")


def _tamper(client: Any, version: str) -> Path:
    """Flip one byte of the version's pickled model in the artifact store."""
    folder = Path(client.get_model_version_download_uri(NAME, version).removeprefix("file://"))
    target = max((p for p in folder.rglob("*.pkl") if p.is_file()), key=lambda p: p.stat().st_size)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    return target


def test_promotion_signs_the_champion(
    signed: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = signed["tracking"].client()
    v1 = client.get_model_version(NAME, signed["versions"][0])
    assert len(v1.tags[DIGEST_TAG]) == 64 and len(v1.tags[SIGNATURE_TAG]) == 64
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the checked copies go
    loaded = load_alias(client, NAME, "champion", verify=True)
    assert loaded.version == str(v1.version)
    sign_version(client, NAME, loaded.version)
    assert list(tmp_path.iterdir()) == []  # the downloaded copies are removed after use
    assert loaded.model is not None and len(loaded.required) > 0  # still usable in memory


def test_a_tampered_version_is_refused_and_the_old_champion_keeps_serving(
    signed: dict[str, Any], tmp_path: Path
) -> None:
    client = signed["tracking"].client()
    v1, v2 = signed["versions"]
    sign_version(client, NAME, v2)  # as its promotion would
    _tamper(client, v2)
    cfg = ServeConfig(poll_seconds=0.1)
    record = signed["test_rows"].head(1).drop(columns=["churned", "customer_id"])
    row = json.loads(record.to_json(orient="records", date_format="iso"))[0]
    with TestClient(create_app(client, NAME, cfg, tmp_path / "log.sqlite")) as http:
        assert http.get("/health").json()["version"] == v1
        client.set_registered_model_alias(NAME, "champion", v2)
        try:
            deadline = time.time() + 30
            while "refused" not in http.get("/health").json() and time.time() < deadline:
                time.sleep(0.1)
            health = http.get("/health").json()
            assert health["version"] == v1  # the verified model keeps serving
            assert health["refused"]["version"] == v2
            assert "changed after promotion" in health["refused"]["reason"]
            answer = http.post("/predict", json=row)
            assert answer.status_code == 200 and answer.json()["model_version"] == v1
            with pytest.raises(IntegrityError, match="changed after promotion"):
                load_alias(client, NAME, "champion", verify=True)  # batch scoring's loader
        finally:
            client.set_registered_model_alias(NAME, "champion", v1)


def test_another_keys_signature_is_refused_and_no_key_loads_with_a_warning(
    signed: dict[str, Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    client = signed["tracking"].client()
    monkeypatch.setenv(SIGNING_KEY_ENV, "key-two")
    with pytest.raises(IntegrityError, match="signature does not match"):
        load_alias(client, NAME, "champion", verify=True)
    monkeypatch.delenv(SIGNING_KEY_ENV)
    import loopml.integrity

    monkeypatch.setattr(loopml.integrity, "_warned", False)
    with caplog.at_level(logging.WARNING):
        assert load_alias(client, NAME, "champion", verify=True).version == signed["versions"][0]
    assert "not verified" in caplog.text


def test_a_version_promoted_without_a_key_is_refused_where_a_key_is_set(
    signed: dict[str, Any],
) -> None:
    client = signed["tracking"].client()
    v1, v2 = signed["versions"]
    tags = client.get_model_version(NAME, v2).tags
    for tag in (DIGEST_TAG, SIGNATURE_TAG):
        if tag in tags:
            client.delete_model_version_tag(NAME, v2, tag)
    client.set_registered_model_alias(NAME, "champion", v2)
    try:
        with pytest.raises(IntegrityError, match=f"{NAME} v{v2} is not signed"):
            load_alias(client, NAME, "champion", verify=True)
    finally:
        client.set_registered_model_alias(NAME, "champion", v1)
        for tag in (DIGEST_TAG, SIGNATURE_TAG):
            if tag in tags:
                client.set_model_version_tag(NAME, v2, tag, tags[tag])


def test_the_server_refuses_to_start_on_a_tampered_champion(
    signed: dict[str, Any], tmp_path: Path
) -> None:
    client = signed["tracking"].client()
    v1 = signed["versions"][0]
    target = _tamper(client, v1)
    try:
        app = create_app(client, NAME, ServeConfig(), tmp_path / "log.sqlite")
        with pytest.raises(IntegrityError, match=f"{NAME} v{v1}"), TestClient(app):
            pass
    finally:  # undo the flip: the module's other tests use v1
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0xFF
        target.write_bytes(bytes(data))
