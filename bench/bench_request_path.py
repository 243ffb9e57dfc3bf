"""Benchmark: the CPU time of one prediction request's path inside a server worker, this
checkout against an earlier commit in the same run, without HTTP.

The HTTP benchmark (``bench_serving.py``) moves by up to 2x between runs of the same code on
100-row requests; a change of a tenth in the request path is lost in that. Here the path is
timed in-process: a registry with the serving tests' champion (``tests/registry.py``, the
bundled data) is built once; each commit's code (a ``git worktree`` on ``PYTHONPATH``) loads
that champion as the server does (``load_served``: compiled features and predictor) and times
``--requests`` requests of each size through the four steps of ``POST /predict`` before the
micro-batcher: parse the JSON body (orjson), check the records (``check_rows``), compute the
features (the compiled transform) and predict (the compiled estimator). The commits alternate,
``--repeat`` times each; each cell is the median (min-max) of the runs' mean microseconds per
request.

    python bench/bench_request_path.py                     # against f9ccb96, doc updated
    python bench/bench_request_path.py --baseline HEAD~3 --repeat 5 --no-doc

Not a test: nothing here asserts a time. Measure on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import parse_bench_args, spread, write_section  # noqa: E402

DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench_request_path:begin -->", "<!-- bench_request_path:end -->"
STEPS = ("parse", "check", "features", "predict")

TIMER = """
import json, sys, time
import orjson
from loopml.runtime import configure_environment
from pathlib import Path
configure_environment(Path(sys.argv[1]))
from mlflow import MlflowClient
from loopml.serving.inputs import check_rows
from loopml.serving.model import load_served
served = load_served(MlflowClient(sys.argv[2]), sys.argv[3], "champion")
kinds, required = served.model.input_kinds, served.required
out = {}
for size, bodies in json.loads(Path(sys.argv[4]).read_text()).items():
    bodies = [b.encode() for b in bodies]
    n = int(sys.argv[5])
    for warm in (True, False):
        t = dict.fromkeys(("parse", "check", "features", "predict"), 0.0)
        for k in range(n // 10 if warm else n):
            body = bodies[k % len(bodies)]
            t0 = time.perf_counter(); records = orjson.loads(body)["records"]
            t1 = time.perf_counter(); rows = check_rows(records, kinds, required)
            t2 = time.perf_counter(); x = served.compiled(rows)
            t3 = time.perf_counter(); served.predict(x)
            t4 = time.perf_counter()
            t["parse"] += t1 - t0; t["check"] += t2 - t1
            t["features"] += t3 - t2; t["predict"] += t4 - t3
    out[size] = {k: v / n * 1e6 for k, v in t.items()}
sys.stdout.write(json.dumps(out))
"""
"""Run in each commit's code: argv = workdir, tracking URI, model name, bodies file, requests."""


def _bodies(records: list[dict], path: Path) -> None:
    sizes = {"1": 1, "100": 100}
    bodies = {
        label: [
            json.dumps({"records": records[i : i + size]})
            for i in range(0, len(records) - size, size)
        ][:50]
        for label, size in sizes.items()
    }
    path.write_text(json.dumps(bodies))


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, dict[str, dict[str, list[float]]]]:
    from loopml.runtime import configure_environment
    from loopml.tracking import tracking_uri
    from tests.registry import build_registry

    configure_environment(tmp)
    reg = build_registry(tmp / "project")
    params = reg["params"]
    rows = reg["test_rows"].drop(columns=["churned", "customer_id"])
    _bodies(json.loads(rows.to_json(orient="records", date_format="iso")), tmp / "bodies.json")
    tree = tmp / "baseline"
    git = ["git", "worktree"]
    subprocess.run([*git, "add", "-q", "--detach", str(tree), args.baseline], cwd=ROOT, check=True)
    codes = {"baseline": tree, "this checkout": ROOT}
    results: dict[str, dict[str, dict[str, list[float]]]] = {name: {} for name in codes}
    argv = [str(tmp), tracking_uri(params), params.promote.model_name, str(tmp / "bodies.json")]
    try:
        for i in range(args.repeat):
            order = list(codes) if i % 2 == 0 else list(reversed(codes))
            for name in order:
                env = {**os.environ, "PYTHONPATH": str(codes[name])}
                cmd = [sys.executable, "-c", TIMER, *argv, str(args.requests)]
                done = subprocess.run(cmd, env=env, cwd=codes[name], capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
                for size, steps in json.loads(done.stdout).items():
                    cell = results[name].setdefault(size, {s: [] for s in (*STEPS, "total")})
                    for step in STEPS:
                        cell[step].append(steps[step])
                    cell["total"].append(sum(steps.values()))
                sys.stderr.write(f"run {i + 1}/{args.repeat} {name}: {done.stdout}\n")
    finally:
        subprocess.run([*git, "remove", "--force", str(tree)], cwd=ROOT, check=False)
    return results


def render(results: dict, args: argparse.Namespace, started: str, head: str) -> str:
    lines = [
        BEGIN,
        f"Measured {started} on {platform.machine()} with {os.cpu_count()} cores (`python "
        f"bench/bench_request_path.py --baseline {args.baseline} --repeat {args.repeat} "
        f"--requests {args.requests}`): microseconds of CPU per request in one process, "
        f"median (min-max) of {args.repeat} runs per commit, the commits alternating; this "
        f"checkout is `{head}`, the ratio is of the medians.",
        "",
        "| request | step | baseline µs | this checkout µs | ratio |",
        "|---|---|---:|---:|---:|",
    ]
    for size in results["baseline"]:
        for step in (*STEPS, "total"):
            base = results["baseline"][size][step]
            new = results["this checkout"][size][step]
            ratio = statistics.median(new) / statistics.median(base)
            name = f"**{step}**" if step == "total" else step
            lines.append(f"| {size}-row | {name} | {spread(base)} | {spread(new)} | {ratio:.2f}x |")
    return "\n".join([*lines, END])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="f9ccb96", help="the earlier commit")
    parser.add_argument("--requests", type=int, default=3000, help="requests per size and run")
    args = parse_bench_args(parser)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="loopml-bench-request-") as tmp:
        results = measure(args, Path(tmp))
    section = render(results, args, started, head)
    sys.stdout.write(section + "\n")
    if not args.no_doc:
        heading = "\n### One request's path, without HTTP\n\n"
        write_section(DOC, section, (BEGIN, END), heading)


if __name__ == "__main__":
    main()
