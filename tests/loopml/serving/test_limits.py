"""The server's limits and its answers to malformed input, on a real uvicorn server: every limit
is enforced before the body is read (memory stays flat under a 200 MB body), every malformed
request is a 4xx with a message, never a 500."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loopml.config import ServeConfig
from loopml.predlog import read_prediction_log
from loopml.serving.app import create_app

TOKEN_ENV = "LOOPML_TEST_SERVE_TOKEN"
MB = 1 << 20


def _rss_mb() -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1)) / 1024  # type: ignore[union-attr]


def _record(registry: dict[str, Any]) -> dict[str, Any]:
    rows = registry["test_rows"].head(1).drop(columns=["churned", "customer_id"])
    return json.loads(rows.to_json(orient="records", date_format="iso"))[0]


@pytest.fixture
def server(registry: dict[str, Any], tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A real uvicorn server on a free port (in this process: its memory is ours to read)."""
    import uvicorn

    cfg = ServeConfig(poll_seconds=5, token_env=TOKEN_ENV)
    log_path = tmp_path / "log.sqlite"
    app = create_app(registry["tracking"].client(), "churn-classifier", cfg, log_path)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    try:
        yield {"url": f"http://127.0.0.1:{port}", "log": log_path, "cfg": cfg}
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


def _stream(total: int) -> Iterator[bytes]:
    """``total`` bytes of a JSON-looking body, 1 MB at a time (the client holds one chunk)."""
    chunk = b"1," * (MB // 2)
    for _ in range(total // MB):
        yield chunk


def _post_raw(url: str, total: int, declared: bool) -> tuple[str, int]:
    """POST up to ``total`` bytes on a raw socket, 1 MB at a time, until the server answers:
    its status line, and how many body bytes it had been sent by then (a client that stops
    sending at the answer: the server cannot have read more)."""
    import select

    host, port = url.removeprefix("http://").split(":")
    framing = f"content-length: {total}" if declared else "transfer-encoding: chunked"
    head = f"POST /predict HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\n"
    sent = 0
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(f"{head}{framing}\r\n\r\n".encode())
        for chunk in _stream(total):
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered
            data = chunk if declared else b"%x\r\n%s\r\n" % (len(chunk), chunk)
            try:
                sock.sendall(data)
            except OSError:  # it answered and closed while we were sending
                break
            sent += len(chunk)
        answer = sock.recv(4096).decode(errors="replace")
    return answer.split("\r\n", 1)[0], sent


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_200_mb_body_is_refused_unread_and_memory_stays_flat(
    server: dict[str, Any], declared: bool
) -> None:
    before = _rss_mb()
    status, sent = _post_raw(server["url"], 200 * MB, declared)
    assert status.startswith("HTTP/1.1 413"), status
    assert sent < 50 * MB, f"{sent / MB:.0f} MB sent before the answer"
    assert _rss_mb() - before < 50, f"memory grew from {before:.0f} MB to {_rss_mb():.0f} MB"


def test_a_20_mb_string_is_413_and_a_long_one_is_422_and_neither_is_logged(
    server: dict[str, Any], registry: dict[str, Any]
) -> None:
    url = f"{server['url']}/predict"
    huge = {**_record(registry), "plan": "x" * (20 * MB)}
    assert httpx.post(url, json=huge, timeout=60).status_code == 413
    long = {**_record(registry), "plan": "x" * 100_000}
    answer = httpx.post(url, json=long, timeout=60)
    assert answer.status_code == 422
    assert "column 'plan'" in answer.json()["detail"] and "max_string_length" in answer.text
    assert httpx.post(url, json=_record(registry)).status_code == 200
    time.sleep(0.5)  # the log writer is asynchronous
    assert len(read_prediction_log(server["log"])) == 1  # only the good row


def test_too_many_records_are_refused(server: dict[str, Any], registry: dict[str, Any]) -> None:
    n = server["cfg"].max_records + 1
    answer = httpx.post(f"{server['url']}/predict", json=[{"x": 1}] * n, timeout=60)
    assert answer.status_code == 422 and "serve.max_records" in answer.text
    labels = {"labels": [{"request_id": "r", "row": i, "label": 1} for i in range(n)]}
    answer = httpx.post(f"{server['url']}/labels", json=labels, timeout=60)
    assert answer.status_code == 422 and "serve.max_records" in answer.text


@pytest.mark.parametrize(
    ("method", "path", "headers", "body", "status"),
    [
        ("POST", "/predict", {"content-type": "text/plain"}, b"{}", 415),
        ("POST", "/predict", {"content-type": "application/x-www-form-urlencoded"}, b"a=1", 415),
        ("POST", "/labels", {}, b"{}", 415),
        ("GET", "/predict", {}, b"", 405),
        ("PUT", "/labels", {"content-type": "application/json"}, b"{}", 405),
        ("DELETE", "/health", {}, b"", 405),
        ("POST", "/predict", {"content-type": "application/json"}, b"{bad", 422),
        ("POST", "/predict", {"content-type": "application/json"}, b"", 422),
    ],
)
def test_methods_and_content_types(
    server: dict[str, Any], method: str, path: str, headers: dict, body: bytes, status: int
) -> None:
    answer = httpx.request(method, server["url"] + path, headers=headers, content=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"]


def test_the_token_is_checked_before_the_body_and_guards_the_docs(
    server: dict[str, Any], registry: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "s3cret-token")
    url = server["url"]
    # no token: 401 although the declared body is far over the limit (it is never sent)
    assert _head_only(url, 200 * MB).startswith(b"HTTP/1.1 401")
    wrong = {"authorization": "Bearer s3cret-tokem"}
    assert httpx.post(f"{url}/predict", json=_record(registry), headers=wrong).status_code == 401
    right = {"authorization": "Bearer s3cret-token"}
    assert httpx.post(f"{url}/predict", json=_record(registry), headers=right).status_code == 200
    for path in ("/docs", "/openapi.json", "/model"):
        assert httpx.get(url + path).status_code == 401, path
        assert httpx.get(url + path, headers=right).status_code == 200, path
    assert httpx.get(f"{url}/health").status_code == 200  # liveness stays open


def _head_only(url: str, length: int) -> bytes:
    """Send only a request's head, declaring a ``length``-byte body; the answer's first line."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {length}\r\n\r\n".encode()
        )
        return conn.recv(1024)


def _predicted(server: dict[str, Any], registry: dict[str, Any]) -> str:
    answer = httpx.post(f"{server['url']}/predict", json=_record(registry))
    return answer.json()["request_id"]


@pytest.mark.parametrize(
    "body",
    [
        b"{bad",
        b"",
        b"null",
        b"[]",
        b'"labels"',
        b'{"labels": []}',
        b'{"labels": null}',
        b'{"labels": [{"row": 0, "label": true}]}',
        b'{"labels": [{"request_id": "RID", "row": "abc", "label": true}]}',
        b'{"labels": [{"request_id": "RID", "row": -1, "label": true}]}',
        b'{"labels": [{"request_id": "RID", "row": 0, "label": 1e400}]}',
        b'{"labels": [{"request_id": "RID", "row": 0, "label": NaN}]}',
        b'{"labels": [{"request_id": "RID", "row": 0, "label": {"a": 1}}]}',
        b'{"labels": [{"request_id": "RID", "row": 0, "label": true, "extra": 1}]}',
        b'{"labels": [{"request_id": "RID", "row": 0, "label": "LONG"}]}',
        b'{"labels": [{"request_id": "nope", "row": 0, "label": true}]}',
        b'{"labels": [{"request_id": "RID", "row": 7, "label": true}]}',
    ],
)
def test_malformed_labels_are_422_with_a_message(
    server: dict[str, Any], registry: dict[str, Any], body: bytes
) -> None:
    rid = _predicted(server, registry)
    body = body.replace(b"RID", rid.encode()).replace(b"LONG", b"y" * 5000)
    answer = httpx.post(
        f"{server['url']}/labels", content=body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"]


def test_a_good_label_is_stored(server: dict[str, Any], registry: dict[str, Any]) -> None:
    rid = _predicted(server, registry)
    body = {"labels": [{"request_id": rid, "row": 0, "label": True}]}
    answer = httpx.post(f"{server['url']}/labels", json=body)
    assert answer.status_code == 200 and answer.json() == {"labels": 1}
    logged = read_prediction_log(server["log"])
    assert logged["label"].notna().sum() == 1
