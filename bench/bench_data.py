"""Benchmark: generate, collect, validate and features at 100k and 1M rows.

Each stage runs in its own process (as ``dvc repro`` runs them), as the same stage flow the DVC
stage runs, reading its input from disk, so wall time and peak memory (RSS high-water mark) are
per stage. Prefect's embedded API is started before the clock starts (a fixed cost per process,
measured by ``bench_training.py``). A bare baseline in the same run: read the generated Parquet
with pandas and write it back, with nothing else.

    python bench/bench_data.py                 # 100k and 1M rows, writes docs/benchmarks.md
    python bench/bench_data.py --rows 20000    # a quick look

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench_data:begin -->", "<!-- bench_data:end -->"

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
    stages[stage](params_path=str(params_path))
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_mb": peak / 1024, "import_mb": base_rss / 1024}))
"""


def _params(project: Path, rows: int, source: Path) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["data"]["source"] = {"kind": "file", "file": {"path": str(source)}}
    raw["data"]["source"]["generator"] = {"n_rows": rows}
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


def run(rows: int) -> dict[str, object]:
    from loopml.project import init_project

    with tempfile.TemporaryDirectory(prefix="loopml-bench-") as tmp:
        project = Path(tmp)
        subprocess.run(["git", "init", "-q"], cwd=project, check=True)
        init_project(project)
        source = project / "incoming" / "batch.parquet"
        source.parent.mkdir()
        params = _params(project, rows, source)
        results = {"generate": _stage("generate", params, str(source))}
        results["baseline"] = _stage("baseline", params, str(source))
        for name in ("collect", "validate", "features"):
            results[name] = _stage(name, params)
            sys.stderr.write(f"  {rows:>9,} rows  {name:<9} {results[name]['seconds']:7.2f}s\n")
        # The validation run a second time: the suite exists, so this is the steady state.
        results["validate"] = _stage("validate", params)
    return {"rows": rows, "stages": results}


def render(runs: list[dict], started: str) -> str:
    lines = [
        BEGIN,
        f"Measured {started} on {platform.machine()} with {os.cpu_count()} cores, "
        f"Python {platform.python_version()} (`python bench/bench_data.py`).",
        "",
        "| rows | stage | wall s | peak RSS MB | vs bare read+write |",
        "|---:|---|---:|---:|---:|",
    ]
    for r in runs:
        st = r["stages"]
        base = st["baseline"]["seconds"]
        for name in ("generate", "baseline", "collect", "validate", "features"):
            s = st[name]
            lines.append(
                f"| {r['rows']:,} | {name} | {s['seconds']:.2f} | {s['peak_mb']:.0f} | "
                f"{s['seconds'] / base:.1f}x |"
            )
        pipeline = sum(st[n]["seconds"] for n in ("collect", "validate", "features"))
        lines.append(
            f"| {r['rows']:,} | **collect+validate+features** | **{pipeline:.2f}** | | "
            f"**{pipeline / base:.1f}x** |"
        )
        share = st["validate"]["seconds"] / pipeline
        lines.append(f"| {r['rows']:,} | GX validation share of the pipeline | {share:.0%} | | |")
    lines += [
        "",
        "`baseline` is pandas reading the generated Parquet and writing it back: the least any "
        "stage that touches every row must do. `collect` includes conforming types, the Parquet "
        "snapshot, `dvc add` and `dvc push` to the local remote; `validate` is the steady state "
        "(suite already profiled); `features` includes the split, fitting the transformer and "
        "writing the splits. Peak RSS includes the interpreter and imports (about 300-400 MB).",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    runs = [run(n) for n in args.rows]
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_data.json").write_text(json.dumps(runs, indent=2))
    section = render(runs, started)
    sys.stdout.write(section + "\n")
    if not args.no_doc:
        text = DOC.read_text() if DOC.exists() else "# Benchmarks\n\n## Data stages\n\n"
        if BEGIN in text:
            head, rest = text.split(BEGIN, 1)
            text = head + section + rest.split(END, 1)[1]
        else:
            text += section + "\n"
        DOC.write_text(text)


if __name__ == "__main__":
    main()
