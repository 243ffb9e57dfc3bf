"""Generated requests against the server: schemathesis from its own OpenAPI schema (every
route, bounded in examples), and hypothesis on ``/labels`` bodies. No answer may be a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.config import ServeConfig
from loopml.serving.app import create_app


@pytest.fixture(scope="module")
def app(registry: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    log_path = tmp_path_factory.mktemp("fuzz") / "log.sqlite"
    served = create_app(registry["tracking"].client(), "churn-classifier", ServeConfig(), log_path)
    with TestClient(served) as client:  # runs the lifespan: the model is loaded
        yield client


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
LABEL = st.fixed_dictionaries(
    {"request_id": st.text(max_size=40), "row": JSON, "label": JSON},
    optional={"extra": JSON},
)
BODIES = JSON | st.fixed_dictionaries({"labels": st.lists(LABEL, max_size=4) | JSON})


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=BODIES)
def test_labels_never_answers_5xx(app: TestClient, body: Any) -> None:
    raw = json.dumps(body, allow_nan=True)  # NaN and Infinity too: what a careless client sends
    answer = app.post("/labels", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code < 500, (raw, answer.text)
    assert answer.status_code in (200, 422), (raw, answer.text)


@pytest.mark.timeout(300)  # bounded in time as well as in examples (25 per operation)
def test_schemathesis_finds_no_server_error(app: TestClient) -> None:
    import schemathesis
    from schemathesis.config import SchemathesisConfig

    schema = schemathesis.openapi.from_asgi("/openapi.json", app.app, config=SchemathesisConfig())
    operations = [op for op in schema.get_all_operations()]
    assert {o.ok().path for o in operations} >= {"/predict", "/labels", "/health", "/model"}

    failures = []
    for result in operations:
        operation = result.ok()

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call()
            if response.status_code >= 500:
                op = case.operation
                failures.append(f"{op.method.upper()} {op.path}: {response.text}")

        check()
    assert not failures, failures[:5]
