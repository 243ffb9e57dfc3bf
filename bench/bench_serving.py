"""Benchmark: the loopml model server against `mlflow models serve` of the same model, and the
monitoring flow at 100k and 1M rows.

Both servers serve the registry's champion (trained here on the bundled data) on loopback with
the same number of worker processes; a closed loop of ``--concurrency`` clients sends 1-row and
100-row requests (real test rows, cycled) for ``--seconds``. The load generator is ``wrk`` (C,
a few percent of one core) when it is installed (`apt-get install wrk`), otherwise an httpx
asyncio client, which itself needs about a core at these rates and so understates both servers.
Reported: p50 and p99 latency and throughput, and loopml's throughput as a ratio of MLflow's.

The monitoring part trains a champion with the training flow (20k rows), then times the whole
monitoring flow (reference from DVC, a new drifted batch from the source, Evidently report,
MLflow logging, verdict) for 100k and 1M current rows, with the time of each task.

    python bench/bench_serving.py               # updates docs/benchmarks.md
    python bench/bench_serving.py --seconds 5 --no-doc

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench_serving:begin -->", "<!-- bench_serving:end -->"


async def _load(
    url: str, payloads: list[object], concurrency: int, seconds: float
) -> dict[str, float]:
    import httpx

    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker(i: int) -> None:
            nonlocal errors
            k = i
            while time.perf_counter() < stop:
                t = time.perf_counter()
                resp = await client.post(url, json=payloads[k % len(payloads)])
                latencies.append(time.perf_counter() - t)
                errors += resp.status_code != 200
                k += concurrency

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    lat = np.array(latencies) * 1000
    return {
        "requests": len(lat),
        "errors": errors,
        "rps": len(lat) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


WRK_SCRIPT = r"""
local bodies = {}
local counter = 0
init = function(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
end
request = function()
  counter = counter + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
                    bodies[(counter % #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def _wrk(url: str, payloads: list[object], concurrency: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="loopml-wrk-") as tmp:
        bodies, script = Path(tmp) / "bodies.jsonl", Path(tmp) / "post.lua"
        bodies.write_text("\n".join(json.dumps(p) for p in payloads) + "\n")
        script.write_text(WRK_SCRIPT)
        out = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{concurrency}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "60s",
                "-s",
                str(script),
                url,
                "--",
                str(bodies),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    r = json.loads(line[len("WRKJSON ") :])
    return {
        "requests": r["requests"],
        "errors": r["non2xx"] + r["socket_errors"],
        "rps": r["requests"] / (r["duration_us"] / 1e6),
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
    }


def load(
    generator: str, url: str, payloads: list[object], concurrency: int, seconds: float
) -> dict[str, float]:
    if generator == "wrk":
        return _wrk(url, payloads, concurrency, seconds)
    return asyncio.run(_load(url, payloads, concurrency, seconds))


# Shifted features of the drifted batch: enough for the shipped drift-share threshold.
DRIFTED = {
    "age": 1.0,
    "monthly_charges": 0.8,
    "tenure_months": 0.8,
    "sessions_last_30d": 0.8,
    "days_since_last_login": 0.8,
}


def monitoring_times(rows: list[int], workdir: Path) -> dict[str, object]:
    """Train a champion with the training flow, then time the monitoring flow per batch size."""
    import yaml

    from bench.common import timed_flow
    from flows.monitoring import monitoring
    from flows.training import training
    from tests.conftest import make_dvc_repo, small_params

    project = make_dvc_repo(workdir / "monitoring")
    raw = small_params()
    raw["data"]["source"]["generator"]["n_rows"] = 20_000
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params_path = str(project / "params.yaml")
    training(params_path=params_path)
    out: dict[str, object] = {"sample_rows": raw["monitor"]["sample_rows"], "runs": {}}
    for n in rows:
        overrides = {
            "monitor": {"current": "source", "trigger": False},
            "data": {
                "source": {
                    "generator": {
                        "n_rows": n,
                        "seed": 99,
                        "drift": {"covariate": DRIFTED},
                    }
                }
            },
        }
        verdict, total, tasks = timed_flow(monitoring, params_path=params_path, overrides=overrides)
        out["runs"][n] = {"total": total, "tasks": tasks, "drift": verdict.drift}
        sys.stderr.write(f"monitoring {n:,} rows: {total:.1f}s\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes per server"
    )
    parser.add_argument(
        "--generator", choices=["auto", "wrk", "httpx"], default="auto", help="load generator"
    )
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    from loopml.runtime import configure_environment
    from loopml.tracking import tracking_uri
    from tests.registry import build_registry
    from tests.stack import free_port, wait_http

    if args.generator == "auto":
        args.generator = "wrk" if shutil.which("wrk") else "httpx"
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="loopml-bench-serve-") as tmp:
        configure_environment(Path(tmp))  # Prefect's embedded database in here, not in $HOME
        reg = build_registry(Path(tmp) / "project")
        params = reg["params"]
        rows = reg["test_rows"].drop(columns=["churned", "customer_id"])
        records = json.loads(rows.to_json(orient="records", date_format="iso"))
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(params)}
        ports = {"loopml": free_port(), "mlflow": free_port()}
        procs = {
            "loopml": subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "loopml_cli",
                    "serve",
                    "--params",
                    str(params.root / "params.yaml"),
                    "--port",
                    str(ports["loopml"]),
                    "-S",
                    f"serve.workers={args.workers}",
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            ),
            "mlflow": subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "mlflow",
                    "models",
                    "serve",
                    "-m",
                    "models:/churn-classifier@champion",
                    "--env-manager",
                    "local",
                    "-p",
                    str(ports["mlflow"]),
                    "-h",
                    "127.0.0.1",
                    "--workers",
                    str(args.workers),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            ),
        }
        try:
            wait_http(f"http://127.0.0.1:{ports['loopml']}/health", 120)
            wait_http(f"http://127.0.0.1:{ports['mlflow']}/ping", 120)
            for size in (1, 100):
                chunks = [records[i : i + size] for i in range(0, len(records) - size, size)] or [
                    records[:size]
                ]
                for name in ("loopml", "mlflow"):
                    if name == "loopml":
                        url, payloads = (
                            f"http://127.0.0.1:{ports[name]}/predict",
                            [{"records": c} for c in chunks],
                        )
                    else:
                        url, payloads = (
                            f"http://127.0.0.1:{ports[name]}/invocations",
                            [{"dataframe_records": c} for c in chunks],
                        )
                    load(args.generator, url, payloads, args.concurrency, 2.0)  # warm-up
                    res = load(args.generator, url, payloads, args.concurrency, args.seconds)
                    results.setdefault(f"{size}-row", {})[name] = res
                    sys.stderr.write(f"{name:<7} {size:>3}-row {res}\n")
        finally:
            for p in procs.values():
                p.terminate()
                p.wait(timeout=30)
        monitor = monitoring_times([100_000, 1_000_000], Path(tmp))
    section = render(results, monitor, args, started)
    sys.stdout.write(section + "\n")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_serving.json").write_text(
        json.dumps({"serving": results, "monitoring": monitor}, indent=2)
    )
    if not args.no_doc:
        text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n"
        if BEGIN in text:
            head, rest = text.split(BEGIN, 1)
            text = head + section + rest.split(END, 1)[1]
        else:
            text += (
                "\n## Serving and monitoring\n\nTargets: p99 under 25 ms for 1-row requests at "
                "50 concurrent clients, and at least twice the throughput of "
                "`mlflow models serve`.\n\n" + section + "\n"
            )
        DOC.write_text(text)


def render(results: dict, monitor: dict, args: argparse.Namespace, started: str) -> str:
    generator = (
        "`wrk`, one thread" if args.generator == "wrk" else "an httpx asyncio client (no `wrk`)"
    )
    lines = [
        BEGIN,
        f"Measured {started} on {platform.machine()} with {os.cpu_count()} cores; "
        f"{args.concurrency} concurrent clients (closed loop, {generator}) for "
        f"{args.seconds:.0f} s per cell; each server with {args.workers} worker process(es); "
        "client and servers on the same machine (`python bench/bench_serving.py`).",
        "",
        "| request | server | req/s | p50 ms | p99 ms | errors | throughput vs mlflow |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for size, by_server in results.items():
        base = by_server["mlflow"]["rps"]
        for name, r in by_server.items():
            lines.append(
                f"| {size} | {name} | {r['rps']:.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                f"{r['errors']} | {r['rps'] / base:.2f}x |"
            )
    runs = monitor["runs"]
    names = sorted(
        {t for r in runs.values() for t in r["tasks"]},
        key=lambda t: -max(r["tasks"].get(t, 0.0) for r in runs.values()),
    )
    lines += [
        "",
        "Monitoring flow, whole run (champion trained on 20k rows; a new batch from the source "
        f"with covariate drift; Evidently on samples of {monitor['sample_rows']:,} rows):",
        "",
        "| | " + " | ".join(f"{n:,} current rows" for n in runs) + " |",
        "|---|" + "---:|" * len(runs),
        "| **monitoring flow, wall s** | "
        + " | ".join(f"**{r['total']:.1f}**" for r in runs.values())
        + " |",
        "| drift detected | "
        + " | ".join("yes" if r["drift"] else "no" for r in runs.values())
        + " |",
    ]
    for name in names:
        lines.append(
            f"| {name} | "
            + " | ".join(f"{r['tasks'].get(name, 0.0):.1f}" for r in runs.values())
            + " |"
        )
    lines.append(END)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
