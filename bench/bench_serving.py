"""Benchmark: the loopml model server against `mlflow models serve` of the same model, and the
monitoring flow at 100k and 1M rows.

Both servers serve the registry's champion (trained here on the bundled data) on loopback with
the same number of worker processes; a closed loop of ``--concurrency`` clients sends 1-row and
100-row requests (real test rows, cycled) for ``--seconds``. The load generator is ``wrk`` (C,
a few percent of one core) when it is installed (`apt-get install wrk`), otherwise an httpx
asyncio client, which itself needs about a core at these rates and so understates both servers.
After one warm-up per server and request size, each cell is measured ``--repeat`` times, the
two servers alternating. Reported: the median and the spread (min-max) of p50 and p99 latency
and throughput, and loopml's median throughput as a ratio of MLflow's.

The monitoring part trains a champion with the training flow (20k rows), then times the whole
monitoring flow (reference from DVC, a new drifted batch from a Parquet file, Evidently report,
MLflow logging, verdict) ``--repeat`` times for each of ``--monitor-rows`` (100k and 1M
current rows), the sizes alternating, with the time of each task.

    python bench/bench_serving.py               # 3 runs per cell, updates docs/benchmarks.md
    python bench/bench_serving.py --seconds 5 --repeat 2 --monitor-rows 20000 --no-doc

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
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
        cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{max(1, round(seconds))}s", "--timeout"]
        cmd += ["60s", "-s", str(script), url, "--", str(bodies)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
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
DRIFTED = {"age": 1.0, "monthly_charges": 0.8, "tenure_months": 0.8}
DRIFTED |= {"sessions_last_30d": 0.8, "days_since_last_login": 0.8}
# Each server's route and the key its body puts the records under.
ROUTES = {"loopml": ("predict", "records"), "mlflow": ("invocations", "dataframe_records")}


def monitoring_times(rows: list[int], repeat: int, workdir: Path) -> dict[str, object]:
    """Train a champion with the training flow, then time the monitoring flow ``repeat`` times
    per batch size, the sizes alternating."""
    import yaml

    from bench.common import timed_flow
    from flows.monitoring import monitoring
    from flows.training import training
    from loopml.config.data import DriftConfig
    from loopml.datagen import generate_churn
    from tests.conftest import make_dvc_repo, small_params

    project = make_dvc_repo(workdir / "monitoring")
    raw = small_params()
    raw["data"]["source"]["generator"]["n_rows"] = 20_000
    (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params_path = str(project / "params.yaml")
    training(params_path=params_path)
    # Each batch is a Parquet file, written before any timing, as a team's new data would be:
    # generating a million synthetic rows is not monitoring's work.
    files = {n: project / "data" / f"current-{n}.parquet" for n in rows}
    for n, path in files.items():
        drift = DriftConfig(covariate=DRIFTED)
        generate_churn(n, seed=99, drift=drift).to_parquet(path, index=False)
    runs: dict[int, list[dict]] = {n: [] for n in rows}
    for i in range(repeat):
        for n in rows:
            source = {"kind": "file", "file": {"path": str(files[n]), "format": "parquet"}}
            overrides = {
                "monitor": {"current": "source", "trigger": False},
                "data": {"source": source},
            }
            verdict, total, tasks = timed_flow(
                monitoring, params_path=params_path, overrides=overrides
            )
            runs[n].append({"total": total, "tasks": tasks, "drift": verdict.drift})
            sys.stderr.write(f"monitoring {n:,} rows, run {i + 1}/{repeat}: {total:.1f}s\n")
    return {"sample_rows": raw["monitor"]["sample_rows"], "runs": runs}


def _servers(params_yaml: Path, env: dict, ports: dict[str, int], workers: int) -> dict:
    """Start both servers on ``ports``: loopml's and ``mlflow models serve`` of the champion."""
    loopml = [sys.executable, "-m", "loopml_cli", "serve", "--params", str(params_yaml)]
    loopml += ["--port", str(ports["loopml"]), "-S", f"serve.workers={workers}"]
    mlflow = [sys.executable, "-m", "mlflow", "models", "serve", "--env-manager", "local"]
    mlflow += ["-m", "models:/churn-classifier@champion", "-p", str(ports["mlflow"])]
    mlflow += ["-h", "127.0.0.1", "--workers", str(workers)]
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.STDOUT}
    return {
        "loopml": subprocess.Popen(loopml, **quiet),
        "mlflow": subprocess.Popen(mlflow, **quiet),
    }


def serving_times(args: argparse.Namespace, records: list, ports: dict[str, int]) -> dict:
    """Per request size and server, ``args.repeat`` measurements, the servers alternating."""
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for size in (1, 100):
        chunks = [records[i : i + size] for i in range(0, len(records) - size, size)]
        chunks = chunks or [records[:size]]
        targets = {
            name: (f"http://127.0.0.1:{ports[name]}/{route}", [{key: c} for c in chunks])
            for name, (route, key) in ROUTES.items()
        }
        for url, payloads in targets.values():
            load(args.generator, url, payloads, args.concurrency, 2.0)  # warm-up
        cell = results[f"{size}-row"] = {name: [] for name in targets}
        for i in range(args.repeat):
            for name, (url, payloads) in targets.items():
                res = load(args.generator, url, payloads, args.concurrency, args.seconds)
                cell[name].append(res)
                sys.stderr.write(f"{name:<7} {size:>3}-row run {i + 1}/{args.repeat} {res}\n")
    return results


def _args() -> argparse.Namespace:
    from bench.common import parse_bench_args

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes per server"
    )
    parser.add_argument(
        "--generator", choices=["auto", "wrk", "httpx"], default="auto", help="load generator"
    )
    parser.add_argument(
        "--monitor-rows", type=int, nargs="+", default=[100_000, 1_000_000], help="current rows"
    )
    parser.add_argument(
        "--serving-only",
        action="store_true",
        help="skip the monitoring part (the output then goes to stdout and the JSON file only)",
    )
    args = parse_bench_args(parser)
    if args.generator == "auto":
        args.generator = "wrk" if shutil.which("wrk") else "httpx"
    return args


def main() -> None:
    from bench.common import write_section
    from loopml.runtime import configure_environment
    from loopml.tracking import tracking_uri
    from tests.registry import build_registry
    from tests.stack import free_port, wait_http

    args = _args()
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory(prefix="loopml-bench-serve-") as tmp:
        configure_environment(Path(tmp))  # Prefect's embedded database in here, not in $HOME
        reg = build_registry(Path(tmp) / "project")
        params = reg["params"]
        rows = reg["test_rows"].drop(columns=["churned", "customer_id"])
        records = json.loads(rows.to_json(orient="records", date_format="iso"))
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(params)}
        ports = {"loopml": free_port(), "mlflow": free_port()}
        procs = _servers(params.root / "params.yaml", env, ports, args.workers)
        try:
            wait_http(f"http://127.0.0.1:{ports['loopml']}/health", 120)
            wait_http(f"http://127.0.0.1:{ports['mlflow']}/ping", 120)
            results = serving_times(args, records, ports)
        finally:
            for p in procs.values():
                p.terminate()
                p.wait(timeout=30)
        if args.serving_only:
            sys.stdout.write("\n".join(_serving_rows(results)) + "\n")
            _save({"serving": results})
            return
        monitor = monitoring_times(args.monitor_rows, args.repeat, Path(tmp))
    section = render(results, monitor, args, started)
    sys.stdout.write(section + "\n")
    _save({"serving": results, "monitoring": monitor})
    if not args.no_doc:
        heading = (
            "\n## Serving and monitoring\n\nTargets: p99 under 25 ms for 1-row requests at 50 "
            "concurrent clients, and at least twice the throughput of `mlflow models serve`.\n\n"
        )
        write_section(DOC, section, (BEGIN, END), heading)


def _save(results: dict) -> None:
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_serving.json").write_text(json.dumps(results, indent=2))


def _serving_rows(results: dict) -> list[str]:
    from bench.common import spread

    lines = []
    for size, by_server in results.items():
        base = statistics.median(r["rps"] for r in by_server["mlflow"])
        for name, runs in by_server.items():
            cells = [spread([r[key] for r in runs], fmt) for key, fmt in _SERVING_CELLS]
            errors = sum(r["errors"] for r in runs)
            rps = statistics.median(r["rps"] for r in runs)
            lines.append(
                f"| {size} | {name} | {' | '.join(cells)} | {errors} | {rps / base:.2f}x |"
            )
    return lines


_SERVING_CELLS = (("rps", ".0f"), ("p50_ms", ".1f"), ("p99_ms", ".1f"))


def _monitoring_rows(monitor: dict) -> list[str]:
    from bench.common import spread

    runs = monitor["runs"]
    names = sorted(
        {t for by_size in runs.values() for r in by_size for t in r["tasks"]},
        key=lambda t: (
            -max(
                statistics.median(r["tasks"].get(t, 0.0) for r in by_size)
                for by_size in runs.values()
            )
        ),
    )

    def drift(by_size: list[dict]) -> str:
        hits = sum(bool(r["drift"]) for r in by_size)
        return "yes" if hits == len(by_size) else "no" if not hits else f"{hits}/{len(by_size)}"

    lines = [
        "| | " + " | ".join(f"{n:,} current rows" for n in runs) + " |",
        "|---|" + "---:|" * len(runs),
        "| **monitoring flow, wall s** | "
        + " | ".join(f"**{spread([r['total'] for r in rs])}**" for rs in runs.values())
        + " |",
        "| drift detected | " + " | ".join(drift(rs) for rs in runs.values()) + " |",
    ]
    for name in names:
        cells = [spread([r["tasks"].get(name, 0.0) for r in rs]) for rs in runs.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def render(results: dict, monitor: dict, args: argparse.Namespace, started: str) -> str:
    generator = (
        "`wrk`, one thread" if args.generator == "wrk" else "an httpx asyncio client (no `wrk`)"
    )
    lines = [
        BEGIN,
        f"Measured {started} on {platform.machine()} with {os.cpu_count()} cores; "
        f"{args.concurrency} concurrent clients (closed loop, {generator}) for "
        f"{args.seconds:.0f} s per cell; each server with {args.workers} worker process(es); "
        "client and servers on the same machine "
        f"(`python bench/bench_serving.py --repeat {args.repeat}`). Each cell is the median "
        f"(min-max) of {args.repeat} runs, the two servers alternating after one warm-up each; "
        f"errors are summed over the runs; the throughput ratio is of the medians.",
        "",
        "| request | server | req/s | p50 ms | p99 ms | errors | throughput vs mlflow |",
        "|---|---|---:|---:|---:|---:|---:|",
        *_serving_rows(results),
        "",
        "Monitoring flow, whole run (champion trained on 20k rows; a new batch with covariate "
        "drift read from a Parquet file written before the timing, `data.source.kind: file`; "
        f"Evidently on samples of {monitor['sample_rows']:,} rows), the "
        f"median (min-max) of {args.repeat} runs per size, the sizes alternating:",
        "",
        *_monitoring_rows(monitor),
        END,
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
