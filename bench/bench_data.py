"""Benchmark: generate, collect, validate and features at 100k and 1M rows.

Each stage runs in its own process (as ``dvc repro`` runs them), as the same stage flow the DVC
stage runs, reading its input from disk, so wall time and peak memory (RSS high-water mark) are
per stage. Prefect's embedded API is started before the clock starts (a fixed cost per process,
measured by ``bench_training.py``). A bare baseline in the same run: read the generated Parquet
with pandas and write it back, with nothing else.

After one untimed warm-up (generate, collect, validate: the suite is profiled), each of
``--repeat`` repetitions takes a new batch (a new generator seed) through every stage and the
baseline in turn; reported are the median and the spread (min-max) of each cell, and ratios of
the medians to the baseline's.

    python bench/bench_data.py                 # 100k and 1M rows, 3 runs, writes the doc
    python bench/bench_data.py --rows 20000 --repeat 2 --no-doc    # a quick look

Not a test: nothing here asserts a time.
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

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench_data:begin -->", "<!-- bench_data:end -->"
STAGES = ("generate", "baseline", "collect", "validate", "features")
PIPELINE = ("collect", "validate", "features")

STAGE_CODE = r"""
import json, resource, sys, time
from pathlib import Path
from loopml.runtime import configure_environment
configure_environment(Path(sys.argv[2]).parent)
stage, params_path, extra = sys.argv[1], Path(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else ""
import pandas as pd
from prefect import flow
from flows.data import collect, featurize, validate
from loopml.config import load_params
from loopml.datagen import generate_churn
params = load_params(params_path)
stages = {"collect": collect, "validate": validate, "features": featurize}
if stage in stages:
    flow(name="warm-up")(lambda: None)()  # start the embedded Prefect API off the clock
base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if stage == "generate":
    g = params.data.source.generator
    generate_churn(g.n_rows, g.seed, g.start, g.days).to_parquet(extra, index=False)
elif stage == "baseline":
    pd.read_parquet(extra).to_parquet(extra + ".copy.parquet", index=False)
else:
    from loopml_cli.prefect_api import without_heartbeats  # as under the `loopml` command

    with without_heartbeats():
        stages[stage](params_path=str(params_path))
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "import_mb": base_rss / 1024}))
"""


def _params(project: Path, rows: int, source: Path, seed: int) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["source"] = {"kind": "file", "file": {"path": str(source)}}
    raw["data"]["source"]["generator"] = {"n_rows": rows, "seed": seed}
    raw["paths"]["suite"] = "gx/suite.json"
    path = project / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _stage(name: str, params: Path, extra: str = "") -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", STAGE_CODE, name, str(params), extra],
        cwd=params.parent,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"stage {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(rows: int, repeat: int) -> dict[str, object]:
    from loopml.project import init_project

    with tempfile.TemporaryDirectory(prefix="loopml-bench-") as tmp:
        project = Path(tmp)
        subprocess.run(["git", "init", "-q"], cwd=project, check=True)
        init_project(project)
        source = project / "incoming" / "batch.parquet"
        source.parent.mkdir()
        # Warm-up, untimed: the first validation profiles the suite; later ones are the steady
        # state.
        params = _params(project, rows, source, seed=0)
        for name in ("generate", "collect", "validate"):
            _stage(name, params, str(source))
        stages: dict[str, list[dict[str, float]]] = {name: [] for name in STAGES}
        for i in range(repeat):
            params = _params(project, rows, source, seed=1 + i)  # a new batch
            for name in STAGES:
                stages[name].append(_stage(name, params, str(source)))
            times = "  ".join(f"{n} {stages[n][-1]['seconds']:.2f}s" for n in STAGES)
            sys.stderr.write(f"  {rows:>9,} rows  run {i + 1}/{repeat}  {times}\n")
    return {"rows": rows, "stages": stages}


def _rows(r: dict) -> list[str]:
    """The table rows of one row count: median (min-max) of each stage, ratios of medians."""
    from bench.common import spread

    n, st = r["rows"], r["stages"]
    secs = {name: [s["seconds"] for s in st[name]] for name in STAGES}
    secs["pipeline"] = [sum(per_run) for per_run in zip(*(secs[p] for p in PIPELINE), strict=True)]
    med = {name: statistics.median(values) for name, values in secs.items()}
    base = med["baseline"]
    lines = []
    for name in STAGES:
        peak = spread([s["peak_mb"] for s in st[name]], ".0f")
        lines.append(
            f"| {n:,} | {name} | {spread(secs[name], '.2f')} | {peak} | {med[name] / base:.1f}x |"
        )
    lines.append(
        f"| {n:,} | **collect+validate+features** | **{spread(secs['pipeline'], '.2f')}** | | "
        f"**{med['pipeline'] / base:.1f}x** |"
    )
    share = med["validate"] / med["pipeline"]
    lines.append(f"| {n:,} | GX validation share of the pipeline | {share:.0%} | | |")
    return lines


def render(runs: list[dict], started: str, repeat: int) -> str:
    lines = [
        BEGIN,
        f"Measured {started} on {platform.machine()} with {os.cpu_count()} cores, "
        f"Python {platform.python_version()} (`python bench/bench_data.py --repeat {repeat}`). "
        f"Each cell is the median (min-max) of {repeat} runs; each run a new batch through "
        "every stage and the baseline in turn, after one untimed warm-up run; ratios are of "
        "the medians.",
        "",
        "| rows | stage | wall s | peak RSS MB | vs bare read+write |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in runs:
        lines += _rows(r)
    lines += [
        "",
        "`baseline` is pandas reading the generated Parquet and writing it back: the least any "
        "stage that touches every row must do. `collect` includes conforming types, the Parquet "
        "snapshot, `dvc add` and `dvc push` to the local remote; `validate` is the steady state "
        "(suite already profiled); `features` includes the split, fitting the transformer and "
        "writing the splits. Peak RSS includes the interpreter and imports (about 300-400 MB). "
        "The GX share is the median validation over the median pipeline.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    from bench.common import parse_bench_args, write_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parse_bench_args(parser)
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    runs = [run(n, args.repeat) for n in args.rows]
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_data.json").write_text(json.dumps(runs, indent=2))
    section = render(runs, started, args.repeat)
    sys.stdout.write(section + "\n")
    if not args.no_doc:
        write_section(DOC, section, (BEGIN, END), "## Data stages\n\n")


if __name__ == "__main__":
    main()
