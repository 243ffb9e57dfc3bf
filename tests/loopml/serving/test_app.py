"""Serving the champion: schema errors are 4xx, alias switches under load fail nothing, the
prediction log has exactly one row per prediction."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from loopml.config import ServeConfig
from loopml.predlog import read_prediction_log
from loopml.serving.app import create_app


def _records(registry: dict[str, Any], n: int) -> list[dict[str, Any]]:
    rows = registry["test_rows"].head(n).drop(columns=["churned", "customer_id"])
    return json.loads(rows.to_json(orient="records", date_format="iso"))


@pytest.fixture
def client(registry: dict[str, Any], tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(
        registry["tracking"].client(),
        "churn-classifier",
        ServeConfig(poll_seconds=0.2),
        log_path=tmp_path / "log.sqlite",
    )
    with TestClient(app) as c:
        c.log_path = tmp_path / "log.sqlite"  # type: ignore[attr-defined]
        yield c


def test_predict_one_and_many(client: TestClient, registry: dict[str, Any]) -> None:
    one = client.post("/predict", json=_records(registry, 1)[0])
    assert one.status_code == 200, one.text
    body = one.json()
    assert body["model_version"] == registry["versions"][0]
    [pred] = body["predictions"]
    assert isinstance(pred["prediction"], bool) and 0.0 <= pred["probability"] <= 1.0
    many = client.post("/predict", json={"records": _records(registry, 7)})
    assert many.status_code == 200 and len(many.json()["predictions"]) == 7


def test_health_and_model_info(client: TestClient, registry: dict[str, Any]) -> None:
    assert client.get("/health").json()["status"] == "ok"
    info = client.get("/model").json()
    assert info["name"] == "churn-classifier" and info["version"] == registry["versions"][0]
    assert info["data_version"] == "v-serving" and "roc_auc" in info["metrics"]
    assert info["fast_path"] is True and info["fast_predictor"] is True


def test_served_predictions_equal_the_registered_model(
    client: TestClient, registry: dict[str, Any]
) -> None:
    """The compiled fast path (features and estimator) answers what the registered MLflow
    model predicts for the same records, missing values and unseen categories included."""
    import mlflow.pyfunc

    records = _records(registry, 60)
    for i, rec in enumerate(records):
        if i % 3 == 0:
            rec.update(country="Atlantis", age=None, plan=None)
    served = client.post("/predict", json={"records": records}).json()["predictions"]
    model = mlflow.pyfunc.load_model("models:/churn-classifier@champion")
    expected = model.predict(pd.DataFrame.from_records(records))
    assert [p["prediction"] for p in served] == expected["prediction"].tolist()
    probability = [p["probability"] for p in served]
    assert probability == pytest.approx(expected["probability"].tolist(), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize(
    ("mutate", "status", "phrase"),
    [
        (lambda r: {k: v for k, v in r.items() if k != "plan"}, 422, "missing column(s): ['plan']"),
        (lambda r: {**r, "age": "forty"}, 422, "column 'age': expected a number, got 'forty'"),
        (lambda r: {**r, "autopay": "maybe"}, 422, "column 'autopay': expected true or false"),
        (
            lambda r: {**r, "event_time": "yesterday-ish"},
            422,
            "column 'event_time': expected a date-time",
        ),
        (lambda r: {**r, "plan": {"nested": 1}}, 422, "column 'plan': expected a string"),
        (lambda r: [], 422, "no records"),
        (lambda r: "just a string", 422, "expected a JSON object"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_problem(
    client: TestClient, registry: dict[str, Any], mutate: Any, status: int, phrase: str
) -> None:
    resp = client.post("/predict", json=mutate(_records(registry, 1)[0]))
    assert resp.status_code == status, resp.text
    assert phrase in resp.json()["detail"]


def test_not_json_and_missing_values(client: TestClient, registry: dict[str, Any]) -> None:
    resp = client.post(
        "/predict", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422 and "not valid JSON" in resp.json()["detail"]
    record = {**_records(registry, 1)[0], "nps_score": None, "age": None, "country": "Atlantis"}
    ok = client.post("/predict", json=record)
    assert ok.status_code == 200, ok.text


def test_labels_attach_to_logged_predictions(client: TestClient, registry: dict[str, Any]) -> None:
    resp = client.post("/predict", json={"records": _records(registry, 3)}).json()
    labels = [{"request_id": resp["request_id"], "row": i, "label": bool(i % 2)} for i in range(3)]
    assert client.post("/labels", json={"labels": labels}).json() == {"labels": 3}
    bad = client.post("/labels", json={"labels": [{"request_id": "nope", "label": True}]})
    assert bad.status_code == 422 and "no logged prediction" in bad.json()["detail"]
    log = read_prediction_log(client.log_path)  # type: ignore[attr-defined]
    labelled = log[log["request_id"] == resp["request_id"]]
    assert labelled["label"].map(json.loads).tolist() == [False, True, False]


def test_bearer_token(
    registry: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOOPML_TEST_TOKEN", "s3cret")
    app = create_app(
        registry["tracking"].client(),
        "churn-classifier",
        ServeConfig(token_env="LOOPML_TEST_TOKEN"),
        log_path=tmp_path / "l.sqlite",
    )
    with TestClient(app) as c:
        record = _records(registry, 1)[0]
        assert c.post("/predict", json=record).status_code == 401
        ok = c.post("/predict", json=record, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_burst_during_alias_switch_fails_nothing_and_logs_every_prediction(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    import uvicorn

    client = registry["tracking"].client()
    v1, v2 = registry["versions"]
    log_path = tmp_path / "burst.sqlite"
    app = create_app(client, "churn-classifier", ServeConfig(poll_seconds=0.1), log_path)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    records = _records(registry, 20)
    total_rows = 0
    try:

        def call(i: int) -> httpx.Response:
            batch = records[: 1 + i % 5]
            return httpx.post(f"{url}/predict", json={"records": batch}, timeout=30)

        with ThreadPoolExecutor(max_workers=16) as pool:
            futures = [pool.submit(call, i) for i in range(300)]
            time.sleep(0.3)
            client.set_registered_model_alias(
                "churn-classifier", "champion", v2
            )  # switch mid-burst
            responses = [f.result() for f in futures]
        assert [r.status_code for r in responses if r.status_code != 200] == []
        total_rows = sum(len(r.json()["predictions"]) for r in responses)
        deadline = time.time() + 10
        while httpx.get(f"{url}/health").json()["version"] != v2 and time.time() < deadline:
            time.sleep(0.1)
        after = httpx.post(f"{url}/predict", json=records[0]).json()
        assert after["model_version"] == v2
        total_rows += 1
    finally:
        client.set_registered_model_alias("churn-classifier", "champion", v1)
        server.should_exit = True
        thread.join(timeout=10)
    log = read_prediction_log(log_path)
    assert len(log) == total_rows
    assert not log.duplicated(["request_id", "row"]).any()
    assert set(log["model_version"]) <= {v1, v2} and v2 in set(log["model_version"])
    pd.testing.assert_series_equal(
        log.groupby("request_id").size().sort_index(),
        log.groupby("request_id")["row"].max().add(1).sort_index(),
        check_names=False,
    )


def test_models_load_through_the_servers_own_client(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    """A process pointed at another MLflow store (other tests, a notebook) still serves the
    registry it was given."""
    import mlflow

    from loopml.registry import load_alias

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'other.db'}")
    mlflow.set_registry_uri(f"sqlite:///{tmp_path / 'other.db'}")
    try:
        loaded = load_alias(registry["tracking"].client(), "churn-classifier", "champion")
    finally:
        registry["tracking"].activate()
    assert loaded.version == registry["versions"][0]


def test_a_server_started_before_any_champion_waits_then_serves_it(
    registry: dict[str, Any], tmp_path: Path
) -> None:
    """A new team stack starts the model server before anything is trained: it answers 503
    (health says waiting) instead of exiting, and serves the first version given the alias."""
    mlflow_client = registry["tracking"].client()
    alias = f"waiting-{uuid.uuid4().hex[:6]}"  # an alias no version has (others use champion)
    cfg = ServeConfig(alias=alias, poll_seconds=0.2)
    app = create_app(mlflow_client, "churn-classifier", cfg, log_path=tmp_path / "log.sqlite")
    with TestClient(app) as c:
        health = c.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "waiting"
        refused = c.post("/predict", json=_records(registry, 2))
        assert refused.status_code == 503, refused.text
        assert f"has the alias '{alias}' yet" in refused.json()["detail"]
        assert c.get("/model").status_code == 503
        mlflow_client.set_registered_model_alias("churn-classifier", alias, registry["versions"][0])
        try:
            deadline = time.time() + 60
            while time.time() < deadline and c.get("/health").status_code != 200:
                time.sleep(0.2)
            assert c.get("/health").json()["version"] == registry["versions"][0]
            answered = c.post("/predict", json=_records(registry, 2))
            assert answered.status_code == 200 and len(answered.json()["predictions"]) == 2
        finally:
            mlflow_client.delete_registered_model_alias("churn-classifier", alias)
    assert len(read_prediction_log(tmp_path / "log.sqlite")) == 2  # only what was answered
