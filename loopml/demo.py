"""The whole loop against a running stack (`loopml up`): traffic with drift -> monitoring finds it
-> retraining runs through the `training` deployment -> promoted or refused, with reasons -> the
model server answers with the new champion.

The drifted traffic is a new batch of the bundled generator: covariate shift on a few features
and a concept shift in the label relation; its labels are sent back as ground truth, so the
monitor sees both data drift and performance decay. The same batch is what "arrives at the
source", so the retraining that monitoring triggers learns from it.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import requests

from loopml.config import Params
from loopml.datagen import generate_churn

log = logging.getLogger(__name__)

DRIFT = {
    # inputs that do not move the churn rate, plus a concept shift that keeps it in place, so the
    # retrained batch passes the class-balance gate and the loop can show a promotion
    "covariate": {"age": 1.0, "discount_pct": 1.0, "device": 0.6, "country": 0.6},
    "concept": 1.0,
}


def _say(step: str, text: str) -> None:
    log.info("[%s] %s", step, text)


def run_demo(
    params: Params, api_url: str, rows: int = 3000, batch: int = 50, timeout: float = 900
) -> dict[str, Any]:
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    server = f"http://{params.serve.host}:{params.serve.port}"
    before = requests.get(f"{server}/model", timeout=10).json()
    _say(
        "1/5 serving",
        f"{before['name']} v{before['version']} (data {str(before['data_version'])[:12]})",
    )

    g = params.data.source.generator
    seed = g.seed + 1000
    traffic = generate_churn(
        rows,
        seed=seed,
        start=g.start,
        days=g.days,
        id_start=10_000_000,
        drift=params.data.source.generator.drift.model_copy(update=DRIFT),
    )
    inputs = traffic.drop(columns=[params.data.schema_.target, *params.data.schema_.drop_columns])
    sent = 0
    for start in range(0, len(inputs), batch):
        chunk = inputs.iloc[start : start + batch]
        records = json.loads(chunk.to_json(orient="records", date_format="iso"))
        resp = requests.post(f"{server}/predict", json={"records": records}, timeout=30)
        resp.raise_for_status()
        body = resp.json()
        truth = traffic[params.data.schema_.target].iloc[start : start + batch].tolist()
        labels = [
            {"request_id": body["request_id"], "row": i, "label": bool(y)}
            for i, y in enumerate(truth)
        ]
        requests.post(f"{server}/labels", json={"labels": labels}, timeout=30).raise_for_status()
        sent += len(records)
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
    with temporary_settings({PREFECT_API_URL: api_url}):
        monitoring = run_deployment(
            "monitoring/monitoring", parameters={"overrides": overrides}, timeout=timeout
        )
        _say("3/5 monitoring", f"flow run {monitoring.name}: {monitoring.state.name}")
        with get_client(sync_client=True) as client:
            deadline = time.time() + timeout
            training = None
            while time.time() < deadline:
                runs = client.read_flow_runs(sort="START_TIME_DESC", limit=5)
                triggered = [
                    r for r in runs if r.created > monitoring.created and r.name != monitoring.name
                ]
                if triggered and triggered[0].state and triggered[0].state.is_final():
                    training = triggered[0]
                    break
                time.sleep(3)
    if training is None:
        _say("4/5 retraining", "no retraining finished in time (see the Prefect UI)")
        return {"before": before, "after": before, "retrained": False}
    _say("4/5 retraining", f"flow run {training.name}: {training.state.name}")
    if not training.state.is_completed():
        _say(
            "4/5 decision",
            f"the retrain did not complete ({training.state.message}); champion unchanged",
        )
        return {"before": before, "after": before, "retrained": False, "state": training.state.name}

    from loopml.tracking import setup_tracking

    client = setup_tracking(params).client()
    versions = sorted(
        client.search_model_versions(f"name='{params.promote.model_name}'"),
        key=lambda v: int(v.version),
    )
    newest = versions[-1]
    decision = newest.tags.get("loopml.decision", "?")
    _say("4/5 decision", f"v{newest.version} {decision}: {newest.tags.get('loopml.reasons', '')}")
    deadline = time.time() + 30
    after = before
    while time.time() < deadline:
        after = requests.get(f"{server}/model", timeout=10).json()
        if decision != "promoted" or after["version"] == str(newest.version):
            break
        time.sleep(1)
    _say("5/5 serving", f"{after['name']} v{after['version']} (was v{before['version']})")
    return {"before": before, "after": after, "retrained": True, "decision": decision}
