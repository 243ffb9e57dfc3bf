"""Benchmark: the training flow through a worker on the server stack against the embedded run.

In one run, on the same data (the bundled generator; each repetition a new seed, so nothing is
cached in either arm), alternating the two arms:

* embedded: ``loopml run`` as a new process (embedded Prefect, SQLite MLflow, local DVC
  remote), wall time of the whole process;
* stack: ``loopml stack up`` once (PostgreSQL, moto S3, MLflow and Prefect servers, two
  workers), then a ``training`` flow run created through the Prefect API and run by a worker,
  from its creation to its end (queueing and the worker's process start included).

Reports the median and the spread (min-max) of each arm and the ratio of the medians. Needs
the local PostgreSQL (``LOOPML_STACK_POSTGRES_URL``). Not a test: nothing here asserts a time.

    python bench/bench_stack.py                 # 3 repetitions of 20k rows, updates the doc
    python bench/bench_stack.py --repeat 5 --rows 5000 --no-doc
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench_stack:begin -->", "<!-- bench_stack:end -->"
SECRETS = {
    "S3_ACCESS_KEY": "bench-access",
    "S3_SECRET_KEY": "bench-secret-key",
    "MLFLOW_TRACKING_USERNAME": "bench",
    "MLFLOW_TRACKING_PASSWORD": "bench-mlflow-pass",
    "MLFLOW_FLASK_SERVER_SECRET_KEY": "bench-flask",
    "PREFECT_API_AUTH_STRING": "bench:bench-prefect-pass",
    "LOOPML_API_TOKEN": "bench-token",
    "LOOPML_SIGNING_KEY": "bench-signing",
}
AUTH = ("bench", "bench-prefect-pass")


def _project(where: Path, rows: int, tracking: str | None) -> Path:
    from tests.conftest import make_dvc_repo, small_params

    repo = make_dvc_repo(where)
    raw = small_params(data={"source": {"generator": {"n_rows": rows}}})
    if tracking:
        raw["tracking"] = {**raw.get("tracking", {}), "uri": tracking}
    (repo / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return repo / "params.yaml"


def _env(home: Path) -> dict[str, str]:
    env = {**os.environ, **SECRETS, "PREFECT_HOME": str(home)}
    for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        env.pop(key, None)
    return env


def embedded(params: Path, seed: int, env: dict[str, str]) -> float:
    cmd = [sys.executable, "-m", "loopml_cli", "run", "-p", str(params)]
    cmd += ["-S", f"data.source.generator.seed={seed}"]
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    return time.perf_counter() - t


def through_worker(api: str, params: Path, seed: int) -> float:
    found = requests.post(f"{api}/deployments/filter", json={}, auth=AUTH, timeout=30).json()
    deployment = next(d["id"] for d in found if d["name"] == "training")
    overrides = {"data": {"source": {"generator": {"seed": seed}}}}
    body = {"parameters": {"params_path": str(params), "overrides": overrides}}
    t = time.perf_counter()
    run = requests.post(
        f"{api}/deployments/{deployment}/create_flow_run", json=body, auth=AUTH, timeout=30
    ).json()
    while True:
        state = requests.get(f"{api}/flow_runs/{run['id']}", auth=AUTH, timeout=30).json()
        if state["state_type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            break
        time.sleep(0.5)
    if state["state_type"] != "COMPLETED":
        raise RuntimeError(f"flow run {run['id']}: {state['state']}")
    return time.perf_counter() - t


def _free_port() -> int:
    from tests.stack import free_port

    return free_port()


def main() -> None:
    from bench.common import parse_bench_args

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    args = parse_bench_args(parser)
    ports = {name: _free_port() for name in ("s3", "mlflow", "prefect")}
    prefix = f"loopml_bench{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="loopml-bench-stack-") as tmp:
        base = Path(tmp)
        local = _project(base / "embedded", args.rows, None)
        served = _project(base / "stack", args.rows, f"http://127.0.0.1:{ports['mlflow']}")
        env = _env(base / "prefect_home")
        up = [sys.executable, "-m", "loopml_cli", "stack", "up", "-p", str(served)]
        up += ["--db-prefix", prefix]
        for name, port in ports.items():
            up += [f"--{name}-port", str(port)]
        started = subprocess.run(up, env=env, capture_output=True, text=True, check=False)
        if started.returncode != 0:
            raise SystemExit(started.stdout + started.stderr)
        api = f"http://127.0.0.1:{ports['prefect']}/api"
        times: dict[str, list[float]] = {"embedded": [], "stack": []}
        try:
            embedded(local, 1, env)  # warm-up: first-run costs (suite profiling) on both
            through_worker(api, served, 1)
            for i in range(args.repeat):
                times["embedded"].append(embedded(local, 100 + i, env))
                times["stack"].append(through_worker(api, served, 100 + i))
        finally:
            down = [sys.executable, "-m", "loopml_cli", "stack", "down", "-p", str(served)]
            subprocess.run(down, env=env, capture_output=True, check=False)
            _drop([f"{prefix}_mlflow", f"{prefix}_prefect"])
    report = _report(times, args.rows, args.repeat)
    sys.stdout.write(report + "\n")
    if not args.no_doc:
        _write_doc(report)


def _drop(names: list[str]) -> None:
    import psycopg

    url = os.environ.get(
        "LOOPML_STACK_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    with psycopg.connect(url, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _report(times: dict[str, list[float]], rows: int, repeat: int) -> str:
    from bench.common import spread

    med = {arm: statistics.median(values) for arm, values in times.items()}
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d} on {platform.machine()}, "
        f"{os.cpu_count()} cores, {rows:,} rows, median of {repeat} runs per arm (alternating), "
        "after one warm-up run of each: `python bench/bench_stack.py`",
        "",
        "| arm | wall s, median (min-max) |",
        "|---|---:|",
    ]
    for arm, values in times.items():
        lines.append(f"| {arm} | {spread(values)} |")
    lines += ["", f"Ratio of the medians, stack / embedded: {med['stack'] / med['embedded']:.2f}"]
    return "\n".join(lines)


def _write_doc(report: str) -> None:
    text = DOC.read_text()
    block = f"{BEGIN}\n{report}\n{END}"
    if BEGIN in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text += f"\n## Training through a worker on the server stack\n\n{block}\n"
    DOC.write_text(text)


if __name__ == "__main__":
    main()
