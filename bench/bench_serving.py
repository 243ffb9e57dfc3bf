"""Benchmark: the loopml model server against `mlflow models serve` of the same model, and the
monitoring drift report at 100k and 1M rows.

Both servers serve the registry's champion (trained here on the bundled data) on loopback; a
closed loop of ``--concurrency`` clients sends 1-row and 100-row requests for ``--seconds``.
Reported: p50 and p99 latency and throughput, and loopml's throughput as a ratio of MLflow's.

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


def monitoring_times(rows: list[int]) -> dict[int, float]:
    from loopml.config import DriftConfig, MonitorConfig, load_params
    from loopml.datagen import generate_churn
    from tasks.monitor import drift_report

    params = load_params(ROOT / "params.yaml")
    out = {}
    reference = generate_churn(20_000, seed=1)
    for n in rows:
        current = generate_churn(n, seed=2, drift=DriftConfig(covariate={"age": 1.0}))
        t = time.perf_counter()
        drift_report.fn(
            reference=reference,
            current=current,
            schema=params.data.schema_,
            cfg=MonitorConfig(sample_rows=params.monitor.sample_rows),
            seed=0,
        )
        out[n] = time.perf_counter() - t
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    from loopml.runtime import configure_environment
    from loopml.tracking import tracking_uri
    from tests.registry import build_registry
    from tests.stack import free_port, wait_http

    configure_environment()
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="loopml-bench-serve-") as tmp:
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
                    "loopml.cli",
                    "serve",
                    "--params",
                    str(params.root / "params.yaml"),
                    "--port",
                    str(ports["loopml"]),
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
                    asyncio.run(_load(url, payloads, args.concurrency, 2.0))  # warm-up
                    res = asyncio.run(_load(url, payloads, args.concurrency, args.seconds))
                    results.setdefault(f"{size}-row", {})[name] = res
                    sys.stderr.write(f"{name:<7} {size:>3}-row {res}\n")
        finally:
            for p in procs.values():
                p.terminate()
                p.wait(timeout=30)
    monitor = monitoring_times([100_000, 1_000_000])
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
    lines = [
        BEGIN,
        f"Measured {started} on {platform.machine()} with {os.cpu_count()} cores; "
        f"{args.concurrency} concurrent clients for {args.seconds:.0f} s per cell, client and "
        "servers on the same machine "
        "(`python bench/bench_serving.py`).",
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
    lines += [
        "",
        "| monitoring drift report (sampled to `monitor.sample_rows`) | wall s |",
        "|---|---:|",
    ]
    for n, secs in monitor.items():
        lines.append(f"| {n:,} current rows | {secs:.1f} |")
    lines.append(END)
    return "\n".join(lines)


if __name__ == "__main__":
    main()
