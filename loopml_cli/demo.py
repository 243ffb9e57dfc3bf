"""``loopml demo``: the whole loop against a running stack (`loopml up`): traffic with drift ->
monitoring finds it -> retraining runs through the `training` deployment -> promoted or refused,
with reasons -> the model server answers with the new champion.

The drifted traffic is a new batch of the bundled generator: covariate shift on a few features
and a concept shift in the label relation; its labels are sent back as ground truth, so the
monitor sees both data drift and performance decay. The same batch is what "arrives at the
source", so the retraining that monitoring triggers learns from it.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import requests
import typer

from loopml.config import Params
from loopml.datagen import generate_churn
from loopml_cli.app import ParamsOpt, app, console, load, session

log = logging.getLogger(__name__)

DRIFT = {
    # inputs that do not move the churn rate, plus a concept shift that keeps it in place, so the
    # retrained batch passes the class-balance gate and the loop can show a promotion
    "covariate": {"age": 1.0, "discount_pct": 1.0, "device": 0.6, "country": 0.6},
    "concept": 1.0,
}


@dataclass(frozen=True)
class DemoResult:
    before: str
    """The served version before."""
    after: str
    """The served version after."""
    retrained: bool
    decision: str | None = None
    state: str | None = None


def _say(step: str, text: str) -> None:
    log.info("[%s] %s", step, text)


def _send_traffic(params: Params, server: str, rows: int, seed: int, batch: int) -> int:
    """Drifted rows predicted through the server, and their labels sent back."""
    g = params.data.source.generator
    table = params.data.table
    traffic = generate_churn(
        rows, seed=seed, start=g.start, days=g.days, id_start=10_000_000,
        drift=g.drift.model_copy(update=DRIFT),
    )  # fmt: skip
    inputs = traffic.drop(columns=[table.target, *table.drop_columns])
    for start in range(0, len(inputs), batch):
        chunk = inputs.iloc[start : start + batch]
        records = json.loads(chunk.to_json(orient="records", date_format="iso"))
        resp = requests.post(f"{server}/predict", json={"records": records}, timeout=30)
        resp.raise_for_status()
        request_id = resp.json()["request_id"]
        truth = traffic[table.target].iloc[start : start + batch].tolist()
        labels = [
            {"request_id": request_id, "row": i, "label": bool(y)} for i, y in enumerate(truth)
        ]
        requests.post(f"{server}/labels", json={"labels": labels}, timeout=30).raise_for_status()
    return len(inputs)


def _monitor_and_wait(api_url: str, overrides: dict[str, Any], timeout: float) -> Any:
    """Run the monitoring deployment; the training run it triggered, once finished (or None)."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: api_url}):
        monitoring = run_deployment(
            "monitoring/monitoring", parameters={"overrides": overrides}, timeout=timeout
        )
        _say("3/5 monitoring", f"flow run {monitoring.name}: {monitoring.state.name}")
        with get_client(sync_client=True) as client:
            deadline = time.time() + timeout
            while time.time() < deadline:
                runs = client.read_flow_runs(sort="START_TIME_DESC", limit=5)
                triggered = [
                    r for r in runs if r.created > monitoring.created and r.name != monitoring.name
                ]
                if triggered and triggered[0].state and triggered[0].state.is_final():
                    return triggered[0]
                time.sleep(3)
    return None


def _served_version(server: str, expected: str | None, wait: float = 30) -> dict[str, Any]:
    """``GET /model``, waiting up to ``wait`` seconds for ``expected`` to be served."""
    deadline = time.time() + wait
    while True:
        info = requests.get(f"{server}/model", timeout=10).json()
        if expected is None or info["version"] == expected or time.time() > deadline:
            return info
        time.sleep(1)


def run_demo(params: Params, api_url: str, rows: int = 3000, timeout: float = 900) -> DemoResult:
    from loopml.tracking import setup_tracking

    server = f"http://{params.serve.host}:{params.serve.port}"
    before = _served_version(server, None)
    _say(
        "1/5 serving",
        f"{before['name']} v{before['version']} (data {str(before['data_version'])[:12]})",
    )
    seed = params.data.source.generator.seed + 1000
    sent = _send_traffic(params, server, rows, seed, batch=50)
    _say("2/5 traffic", f"{sent} drifted rows predicted and labelled through {server}")
    overrides = {
        "monitor": {"current": "log", "cooldown_minutes": 0},
        "data": {
            "source": {
                "kind": "generator",
                "generator": {"n_rows": rows * 4, "seed": seed, "drift": DRIFT},
            }
        },
    }
    training = _monitor_and_wait(api_url, overrides, timeout)
    if training is None:
        _say("4/5 retraining", "no retraining finished in time (see the Prefect UI)")
        return DemoResult(before["version"], before["version"], retrained=False)
    _say("4/5 retraining", f"flow run {training.name}: {training.state.name}")
    if not training.state.is_completed():
        _say(
            "4/5 decision",
            f"the retrain did not complete ({training.state.message}); champion unchanged",
        )
        return DemoResult(before["version"], before["version"], False, state=training.state.name)
    client = setup_tracking(params).client()
    newest = max(
        client.search_model_versions(f"name='{params.promote.model_name}'"),
        key=lambda v: int(v.version),
    )
    decision = newest.tags.get("loopml.decision", "?")
    _say("4/5 decision", f"v{newest.version} {decision}: {newest.tags.get('loopml.reasons', '')}")
    after = _served_version(server, str(newest.version) if decision == "promoted" else None)
    _say("5/5 serving", f"{after['name']} v{after['version']} (was v{before['version']})")
    return DemoResult(before["version"], after["version"], True, decision=decision)


@app.command()
def demo(
    params: ParamsOpt = Path("params.yaml"),
    api_url: Annotated[
        str, typer.Option(help="Prefect API of `loopml up`.")
    ] = "http://127.0.0.1:4200/api",
    rows: Annotated[int, typer.Option(min=100, help="Drifted rows of traffic to send.")] = 3000,
) -> None:
    """The whole loop on a running stack (`loopml up`): drifted traffic -> monitoring -> retraining
    -> promotion or refusal -> the server answers with the new champion."""
    with session("demo", params):
        result = run_demo(load(params), api_url, rows=rows)
    console.print(json.dumps(result.__dict__), markup=False)
