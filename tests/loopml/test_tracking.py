"""Which failures are an MLflow server that stopped answering (one message for the console)."""

from __future__ import annotations

from mlflow.exceptions import MlflowException

from loopml.tracking import unreachable_server

REFUSED = (
    "API request to http://10.0.0.5:5000/api/2.0/mlflow/runs/create failed with exception "
    "HTTPConnectionPool(host='10.0.0.5', port=5000): Max retries exceeded with url: "
    "/api/2.0/mlflow/runs/create (Caused by NewConnectionError('Failed to establish a new "
    "connection: [Errno 111] Connection refused'))"
)


def test_a_refused_request_names_the_server_and_what_to_do() -> None:
    message = unreachable_server(MlflowException(REFUSED))
    assert message is not None
    assert "the MLflow tracking server http://10.0.0.5:5000 stopped answering" in message
    assert "/api/2.0/mlflow/runs/create" in message and "re-run" in message


def test_it_is_found_behind_the_error_it_caused() -> None:
    try:
        try:
            raise MlflowException(REFUSED)
        except MlflowException as exc:
            raise RuntimeError("log-candidate failed") from exc
    except RuntimeError as outer:
        assert unreachable_server(outer) is not None


def test_other_mlflow_errors_are_not_an_outage() -> None:
    assert unreachable_server(MlflowException("RESOURCE_DOES_NOT_EXIST: no such run")) is None
    bad_request = "API request to http://h/api/2.0/mlflow/x failed with exception 400 Bad Request"
    assert unreachable_server(MlflowException(bad_request)) is None
    assert unreachable_server(ValueError("Connection refused")) is None
