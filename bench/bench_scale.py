"""Benchmark: peak memory and wall time of each stage at 1M and 10M rows.

For each size, a new project on the shipped params.yaml (the bundled generator at that many
rows), then every stage as its own command, as DVC runs them: ``loopml collect``,
``validate``, ``features``, ``train``, ``evaluate``, then ``loopml score`` on a batch of the
same size from the generator (the selected candidate registered as the champion first, outside
the timing: the DVC stages register nothing). Each command's peak resident memory is read from
the kernel (``wait4``'s ``ru_maxrss``: the largest of the command and the children it waited
for, its embedded Prefect server included), its wall time from the clock around it.

Training at 10M rows with every shipped candidate would take hours on 2 cores: the candidates
run under ``train.time_budget`` (``--train-budget``, seconds shared by all of them), and the
Lightning candidate gets ``--epochs`` epochs. What each stage did is printed beside it.

    python bench/bench_scale.py --rows 1000000                 # 3 runs, doc updated
    python bench/bench_scale.py --rows 10000000 --repeat 1 --no-doc

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
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import new_project, parse_bench_args, spread, write_section

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def markers(rows: int) -> tuple[str, str]:
    """One section per size: sizes are measured in separate invocations (10M once, 1M thrice)."""
    return f"<!-- bench_scale_{rows}:begin -->", f"<!-- bench_scale_{rows}:end -->"


STAGES = ("collect", "validate", "features", "train", "evaluate", "score")


def run_stage(stage: str, params: Path) -> tuple[float, float]:
    """One command: (wall seconds, peak RSS in GB). Raises on a failed command."""
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    log = params.parent / f"bench-{stage}.log"
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "loopml_cli", stage, "-p", str(params)],
            cwd=params.parent, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(
            f"loopml {stage} failed; the end of its output:\n{log.read_text()[-3000:]}"
        )
    return wall, usage.ru_maxrss / 1024 / 1024  # kB -> GB


def project(where: Path, rows: int, budget: float, epochs: int) -> Path:
    import yaml

    params, raw = new_project(where, rows)
    raw["train"]["time_budget"] = budget
    raw["train"]["lightning"]["max_epochs"] = epochs
    raw["score"]["source"] = {"kind": "generator", "generator": {"n_rows": rows, "seed": 7}}
    raw["validate"]["data_docs"] = False
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    return params


def register_selected(params_path: Path) -> None:
    """Register the selected candidate as the champion, for ``loopml score`` to load."""
    import mlflow

    from loopml.aliases import CHAMPION
    from loopml.candidates import TrainedCandidates
    from loopml.config import load_params
    from loopml.tracking import setup_tracking

    params = load_params(params_path)
    trained = TrainedCandidates.read(params.path("models") / "candidates.json")
    tracking = setup_tracking(params)
    version = mlflow.register_model(trained.selected.model_uri, params.promote.model_name)
    tracking.client().set_registered_model_alias(
        params.promote.model_name, CHAMPION, version.version
    )


def what_trained(params: Path) -> str:
    import yaml

    raw = yaml.safe_load(params.read_text())
    candidates = json.loads(
        (params.parent / raw["paths"]["models"] / "candidates.json").read_text()
    )
    parts = []
    for c in candidates["candidates"]:
        note = " (out of time)" if c.get("out_of_time") else ""
        parts.append(f"{c['name']} {c['val_score']:.4f}{note}")
    skipped = candidates.get("skipped", [])
    return ", ".join(parts) + (f"; skipped: {', '.join(skipped)}" if skipped else "")


def measure(rows: int, repeat: int, budget: float, epochs: int) -> dict[str, object]:
    walls: dict[str, list[float]] = {s: [] for s in STAGES}
    peaks: dict[str, list[float]] = {s: [] for s in STAGES}
    trained = ""
    for i in range(repeat):
        with tempfile.TemporaryDirectory(prefix=f"bench-scale-{rows}-") as tmp:
            params = project(Path(tmp) / "p", rows, budget, epochs)
            for stage in STAGES:
                if stage == "score":
                    register_selected(params)  # the DVC stages register nothing; not timed
                wall, peak = run_stage(stage, params)
                walls[stage].append(wall)
                peaks[stage].append(peak)
                said = f"{rows:,} rows, run {i + 1}: {stage} {wall:.1f} s, {peak:.2f} GB"
                print(said, flush=True)  # noqa: T201
            trained = what_trained(params)
    return {"walls": walls, "peaks": peaks, "trained": trained}


def render(results: dict[int, dict], args: argparse.Namespace) -> str:
    """The section of one size (``results`` has one key)."""
    sizes = sorted(results)
    head = " | ".join(f"{n:,} rows: wall s | peak GB" for n in sizes)
    lines = [
        markers(sizes[0])[0],
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} with "
        f"{os.cpu_count()} cores, {_ram_gb():.0f} GB RAM (`python bench/bench_scale.py --rows "
        f"{sizes[0]} --repeat {args.repeat} --train-budget "
        f"{args.train_budget:g} --epochs {args.epochs}`). Each stage is its own `loopml` "
        "command on a new project (the bundled generator); peak memory is the kernel's maximum "
        f"resident set of the command and its children; {_cells(args.repeat)}.",
        "",
        f"| stage | {head} |",
        f"|---|{'---:|---:|' * len(sizes)}",
    ]
    for stage in STAGES:
        cells = " | ".join(
            f"{spread(results[n]['walls'][stage])} | {spread(results[n]['peaks'][stage], '.2f')}"
            for n in sizes
        )
        lines.append(f"| {stage} | {cells} |")
    totals = " | ".join(
        f"{statistics.median(_sum(results[n]['walls'])):.1f} | "
        f"{max(max(v) for v in results[n]['peaks'].values()):.2f}"
        for n in sizes
    )
    lines.append(f"| **all stages** | {totals} |")
    lines.append("")
    for n in sizes:
        lines.append(f"- {n:,} rows, validation score of each candidate: {results[n]['trained']}")
    lines.append(markers(sizes[0])[1])
    return "\n".join(lines)


def _sum(walls: dict[str, list[float]]) -> list[float]:
    return [sum(run) for run in zip(*walls.values(), strict=True)]


def _cells(repeat: int) -> str:
    return "one run per size" if repeat == 1 else f"median (min-max) of {repeat} runs"


def _ram_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--train-budget", type=float, default=1200.0, help="train.time_budget, s")
    parser.add_argument("--epochs", type=int, default=2, help="train.lightning.max_epochs")
    args = parse_bench_args(parser)
    for rows in args.rows:
        result = {rows: measure(rows, args.repeat, args.train_budget, args.epochs)}
        section = render(result, args)
        print(section)  # noqa: T201
        if not args.no_doc:
            heading = f"\n## Stages at {rows:,} rows: peak memory and time\n\n"
            write_section(DOC, section, markers(rows), heading)


if __name__ == "__main__":
    main()
