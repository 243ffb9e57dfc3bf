"""Benchmark: the train stage with its candidates one after another, and on Dask.

In one project (the bundled generator, 100k rows by default), the shipped candidates with the
gradient-boosting search widened to 9 trials; the features are built once, then the ``train``
stage flow runs ``--repeat`` times with each executor, alternating, never from Prefect's cache:

* sequential: ``train.executor.kind: sequential`` (every candidate in the flow's process, which
  uses all cores for OpenMP and torch);
* dask: ``kind: dask`` on a local cluster of ``--workers`` processes of one thread each,
  started and stopped inside the timed run (what a user waits for).

Reports the median (min-max) wall time of each and the ratio dask / sequential, and the selected
candidate of each (the same, or the figures compare different work).

    python bench/bench_dask.py                       # 100k rows, 3 runs each, updates the doc
    python bench/bench_dask.py --rows 20000 --repeat 1 --no-doc

Not a test: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench_dask:begin -->", "<!-- bench_dask:end -->"
KINDS = ("sequential", "dask")


def _project(where: Path, rows: int) -> Path:
    """A new project on the shipped params, the gradient-boosting search widened to 9 trials."""
    from bench.common import new_project

    path, raw = new_project(where, rows)
    for candidate in raw["train"]["candidates"]:
        if candidate.get("search"):
            candidate["search"]["n_trials"] = 9
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _train(params: Path, kind: str, workers: int) -> tuple[float, str]:
    from prefect.settings import PREFECT_TASKS_REFRESH_CACHE, temporary_settings

    from flows.modeling import train
    from loopml_cli.prefect_api import without_heartbeats

    executor = {"kind": kind, "n_workers": workers, "threads_per_worker": 1}
    with temporary_settings({PREFECT_TASKS_REFRESH_CACHE: True}), without_heartbeats():
        t = time.perf_counter()
        trained = train(params_path=str(params), overrides={"train": {"executor": executor}})
        seconds = time.perf_counter() - t
    return seconds, trained.selected.name


def main() -> None:
    from bench.common import parse_bench_args, write_section

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    args = parse_bench_args(parser)

    from loopml.runtime import configure_environment

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    runs: dict[str, list[float]] = {kind: [] for kind in KINDS}
    selected: dict[str, set[str]] = {kind: set() for kind in KINDS}
    with tempfile.TemporaryDirectory(prefix="loopml-bench-dask-") as tmp:
        project = Path(tmp)
        os.environ["PREFECT_HOME"] = str(project / ".prefect")
        configure_environment(project)
        params = _project(project, args.rows)
        from flows.data import collect, featurize, validate

        for stage in (collect, validate, featurize):  # the features, once, off the clock
            stage(params_path=str(params))
        for i in range(args.repeat):
            for kind in KINDS if i % 2 == 0 else KINDS[::-1]:
                seconds, best = _train(params, kind, args.workers)
                runs[kind].append(seconds)
                selected[kind].add(best)
                sys.stderr.write(f"  run {i + 1}/{args.repeat}  {kind} {seconds:.1f}s ({best})\n")
    results = {
        "rows": args.rows,
        "workers": args.workers,
        "runs": runs,
        "selected": {k: sorted(v) for k, v in selected.items()},
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_dask.json").write_text(json.dumps(results, indent=2))
    section = render(results, started, args.repeat)
    sys.stdout.write(section + "\n")
    if not args.no_doc:
        write_section(DOC, section, (BEGIN, END), "\n## Candidates on Dask\n\n")


def render(r: dict, started: str, repeat: int) -> str:
    from bench.common import spread

    med = {kind: statistics.median(r["runs"][kind]) for kind in KINDS}
    return "\n".join(
        [
            BEGIN,
            f"Measured {started} on {platform.machine()} with {os.cpu_count()} cores "
            f"(`python bench/bench_dask.py --rows {r['rows']} --workers {r['workers']} "
            f"--repeat {repeat}`): the `train` stage flow on {r['rows']:,} rows, the shipped "
            "candidates with a 9-trial gradient-boosting search, never from cache; median "
            f"(min-max) of {repeat} runs each, alternating.",
            "",
            "| executor | wall s | vs sequential | selected |",
            "|---|---:|---:|---|",
            f"| sequential (flow process, all cores) | {spread(r['runs']['sequential'])} | "
            f"1.00x | {', '.join(r['selected']['sequential'])} |",
            f"| dask, local cluster of {r['workers']} workers x 1 thread (cluster start "
            f"included) | {spread(r['runs']['dask'])} | "
            f"{med['dask'] / med['sequential']:.2f}x | {', '.join(r['selected']['dask'])} |",
            END,
        ]
    )


if __name__ == "__main__":
    main()
