"""Benchmark: two or more commits side by side in one session (data stages or training flow).

Figures from different days or machines cannot be compared; this runs each commit's own
benchmark script (from a ``git worktree`` of that commit, on its own code) in turn, on the same
machine in the same session, ``--repeat`` times with the order rotated each round, and reports
each figure's median (min-max) and the ratio of each commit's median to the first commit's.

``--bench data`` (default) runs ``bench/bench_data.py``: collect, validate, features, and a
bare pandas read+write of the same batch in the same run (the in-run baseline).
``--bench training`` runs ``bench/bench_training.py``: the whole training flow (first run on a
new project, steady state, unchanged re-run) and the bare script doing the same fitting in the
same run (the in-run baseline). The whole flow is where work moved between stages nets out.

    python bench/bench_revisions.py ed830b3 HEAD                # data, 1M rows, 3 rounds
    python bench/bench_revisions.py ed830b3 e06d6ea --bench training --rows 100000

The commits measure what their scripts measured: up to ed830b3 a data stage is its library
function in a process of its own; from e06d6ea on, the stage flow the DVC stage runs (Prefect's
embedded API started before the clock). Not a test: nothing here asserts a time.
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
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "benchmarks.md"


@dataclass(frozen=True)
class Bench:
    """One benchmark script as compared across commits."""

    script: str
    figures: tuple[str, ...]
    """What each run reports; ``figures[0]`` is the in-run baseline."""
    total: tuple[str, ...]
    """Figures summed into the row ``pipeline`` (empty: no such row)."""
    measured: str
    """The figure compared with the in-run baseline."""
    markers: tuple[str, str]
    heading: str


BENCHES = {
    "data": Bench(
        script="bench_data.py",
        figures=("baseline", "collect", "validate", "features"),
        total=("collect", "validate", "features"),
        measured="pipeline",
        markers=("<!-- bench_revisions:begin -->", "<!-- bench_revisions:end -->"),
        heading="## Data stages across commits\n\n",
    ),
    "training": Bench(
        script="bench_training.py",
        figures=("bare", "flow", "first", "rerun"),
        total=(),
        measured="flow",
        markers=(
            "<!-- bench_revisions_training:begin -->",
            "<!-- bench_revisions_training:end -->",
        ),
        heading="## Training flow across commits\n\n",
    ),
}


def _commit(rev: str) -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", f"{rev}^{{commit}}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"error: {rev!r} is not a commit of {ROOT}")
    return out.stdout.strip()


def _figures(bench: Bench, result: Path) -> dict[str, float]:
    """Seconds per figure from one run's JSON, in the layout of the commit's script."""
    raw = json.loads(result.read_text())
    if bench.script == "bench_data.py":
        # Up to e06d6ea a stage holds one run's figures, later a list of runs.
        stages = {
            name: s[-1] if isinstance(s, list) else s
            for name, s in raw[0]["stages"].items()
            if name in bench.figures
        }
        peaks = {f"{name} peak MB": s["peak_mb"] for name, s in stages.items() if "peak_mb" in s}
        return {name: s["seconds"] for name, s in stages.items()} | peaks
    # Up to e06d6ea one run at the top level, later a list under "runs".
    run = raw["runs"][-1] if "runs" in raw else raw
    return {kind: run[kind]["total"] for kind in bench.figures}


def _run_once(bench: Bench, tree: Path, rows: int) -> dict[str, float]:
    """One run of ``tree``'s script: seconds per figure."""
    script = tree / "bench" / bench.script
    cmd = [sys.executable, str(script), "--rows", str(rows), "--no-doc"]
    if "--repeat" in script.read_text():
        cmd += ["--repeat", "1"]
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the commit's code, not the installed one
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{bench.script} of {tree.name} failed:\n{proc.stderr[-3000:]}")
    name = bench.script.removesuffix(".py") + ".json"
    run = _figures(bench, tree / "bench" / "results" / name)
    if bench.total:
        run["pipeline"] = sum(run[s] for s in bench.total)
    return run


def measure(
    bench: Bench, commits: list[str], rows: int, repeat: int
) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="loopml-revs-") as tmp:
        trees = {c: Path(tmp) / c for c in commits}
        for commit, tree in trees.items():
            subprocess.run(
                ["git", "worktree", "add", "-q", "--detach", str(tree), commit],
                cwd=ROOT,
                check=True,
            )
        try:
            for i in range(repeat):
                order = commits[i % len(commits) :] + commits[: i % len(commits)]
                for commit in order:
                    run = _run_once(bench, trees[commit], rows)
                    results[commit].append(run)
                    sys.stderr.write(
                        f"  round {i + 1}/{repeat}  {commit}  "
                        + "  ".join(
                            f"{k} {v:.0f}" if k.endswith("MB") else f"{k} {v:.2f}s"
                            for k, v in run.items()
                        )
                        + "\n"
                    )
        finally:
            for tree in trees.values():
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
                )
    return results


def render(bench: Bench, results: dict[str, list[dict[str, float]]], rows: int, repeat: int) -> str:
    from bench.common import spread

    commits = list(results)
    first = commits[0]
    base = bench.figures[0]

    def med(commit: str, figure: str) -> float:
        return statistics.median(r[figure] for r in results[commit])

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = (
        f"python bench/bench_revisions.py {' '.join(commits)} --bench "
        f"{bench.script.removeprefix('bench_').removesuffix('.py')} --rows {rows} "
        f"--repeat {repeat}"
    )
    lines = [
        bench.markers[0],
        f"Measured {started} on {platform.machine()} with {os.cpu_count()} cores "
        f"(`{command}`): {rows:,} rows, {repeat} rounds, order rotated each round; median "
        f"(min-max) seconds (and peak resident MB of each stage's process where the script "
        f"records it), and the ratio of each median to {first}'s.",
        "",
        "| figure | "
        + " | ".join(commits)
        + " | "
        + " | ".join(f"{c} / {first}" for c in commits[1:])
        + " |",
        "|---|" + "---:|" * (2 * len(commits) - 1),
    ]
    peaks = [f"{name} peak MB" for name in bench.figures if f"{name} peak MB" in results[first][0]]
    for figure in (*bench.figures, *(["pipeline"] if bench.total else []), *peaks):
        digits = ".0f" if figure in peaks else ".2f"
        cells = [spread([r[figure] for r in results[c]], digits) for c in commits]
        ratios = [f"{med(c, figure) / med(first, figure):.2f}" for c in commits[1:]]
        lines.append(f"| {figure} | " + " | ".join(cells + ratios) + " |")
    per_base = [statistics.median(r[bench.measured] / r[base] for r in results[c]) for c in commits]
    lines.append(
        f"| {bench.measured} / in-run {base} | "
        + " | ".join(f"{v:.2f}x" for v in per_base)
        + " | "
        + " | ".join(f"{v / per_base[0]:.2f}" for v in per_base[1:])
        + " |"
    )
    return "\n".join([*lines, bench.markers[1]])


def main() -> None:
    from bench.common import parse_bench_args

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs="+", help="commits to compare; the first is the base")
    parser.add_argument("--bench", choices=sorted(BENCHES), default="data")
    parser.add_argument(
        "--rows", type=int, default=None, help="default: 1,000,000 (data), 100,000 (training)"
    )
    args = parse_bench_args(parser)
    if len(args.revisions) < 2:
        parser.error("give at least two revisions")
    bench = BENCHES[args.bench]
    rows = args.rows or (1_000_000 if args.bench == "data" else 100_000)
    commits = [_commit(r) for r in args.revisions]
    results = measure(bench, commits, rows, args.repeat)
    sys.stderr.flush()
    section = render(bench, results, rows, args.repeat)
    sys.stdout.write(section + "\n")
    if not args.no_doc:
        from bench.common import write_section

        write_section(DOC, section, bench.markers, bench.heading)


if __name__ == "__main__":
    main()
