"""Benchmark: the data stages of two or more commits, side by side in one session.

Figures from different days or machines cannot be compared; this runs each commit's own
``bench/bench_data.py`` (from a ``git worktree`` of that commit, on its own code) in turn, on
the same machine in the same session, ``--repeat`` times with the order rotated each round, and
reports each stage's median (min-max) and the ratio of each commit's median to the first
commit's. Each run of a script also times a bare pandas read+write of the same batch, so a
ratio to that in-run baseline is given too (it cancels a machine that got slower mid-session).

    python bench/bench_revisions.py ed830b3 HEAD                # 1M rows, 3 rounds, the doc
    python bench/bench_revisions.py ed830b3 e06d6ea HEAD --rows 100000 --repeat 3

The commits measure what their scripts measured: up to ed830b3 a stage is its library function
in a process of its own; from e06d6ea on, the stage flow the DVC stage runs (Prefect's embedded
API started before the clock). Not a test: nothing here asserts a time.
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
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench_revisions:begin -->", "<!-- bench_revisions:end -->"
STAGES = ("baseline", "collect", "validate", "features")
PIPELINE = ("collect", "validate", "features")


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


def _run_once(tree: Path, rows: int) -> dict[str, float]:
    """One run of ``tree``'s bench_data.py: seconds per stage."""
    script = tree / "bench" / "bench_data.py"
    cmd = [sys.executable, str(script), "--rows", str(rows), "--no-doc"]
    if "--repeat" in script.read_text():
        cmd += ["--repeat", "1"]
    env = {**os.environ, "PYTHONPATH": str(tree)}  # the commit's code, not the installed one
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench_data.py of {tree.name} failed:\n{proc.stderr[-3000:]}")
    stages = json.loads((tree / "bench" / "results" / "bench_data.json").read_text())[0]["stages"]
    # Up to e06d6ea a stage holds one run's figures, later a list of runs.
    return {
        name: (s[-1] if isinstance(s, list) else s)["seconds"]
        for name, s in stages.items()
        if name in STAGES
    }


def measure(commits: list[str], rows: int, repeat: int) -> dict[str, list[dict[str, float]]]:
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
                    run = _run_once(trees[commit], rows)
                    run["pipeline"] = sum(run[s] for s in PIPELINE)
                    results[commit].append(run)
                    sys.stderr.write(
                        f"  round {i + 1}/{repeat}  {commit}  "
                        + "  ".join(f"{k} {v:.2f}s" for k, v in run.items())
                        + "\n"
                    )
        finally:
            for tree in trees.values():
                subprocess.run(
                    ["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False
                )
    return results


def render(results: dict[str, list[dict[str, float]]], rows: int, repeat: int) -> str:
    from bench.common import spread

    commits = list(results)
    first = commits[0]

    def med(commit: str, stage: str) -> float:
        return statistics.median(r[stage] for r in results[commit])

    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        BEGIN,
        f"Measured {started} on {platform.machine()} with {os.cpu_count()} cores "
        f"(`python bench/bench_revisions.py {' '.join(commits)} --rows {rows} --repeat {repeat}`)"
        f": {rows:,} rows, {repeat} rounds, order rotated each round; median (min-max) "
        f"seconds, and the ratio of each median to {first}'s.",
        "",
        "| stage | "
        + " | ".join(commits)
        + " | "
        + " | ".join(f"{c} / {first}" for c in commits[1:])
        + " |",
        "|---|" + "---:|" * (2 * len(commits) - 1),
    ]
    for stage in (*STAGES, "pipeline"):
        cells = [spread([r[stage] for r in results[c]], ".2f") for c in commits]
        ratios = [f"{med(c, stage) / med(first, stage):.2f}" for c in commits[1:]]
        lines.append(f"| {stage} | " + " | ".join(cells + ratios) + " |")
    per_base = [
        statistics.median(r["pipeline"] / r["baseline"] for r in results[c]) for c in commits
    ]
    lines.append(
        "| pipeline / in-run read+write | "
        + " | ".join(f"{v:.1f}x" for v in per_base)
        + " | "
        + " | ".join(f"{v / per_base[0]:.2f}" for v in per_base[1:])
        + " |"
    )
    return "\n".join([*lines, END])


def main() -> None:
    from bench.common import parse_bench_args

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs="+", help="commits to compare; the first is the base")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parse_bench_args(parser)
    if len(args.revisions) < 2:
        parser.error("give at least two revisions")
    commits = [_commit(r) for r in args.revisions]
    results = measure(commits, args.rows, args.repeat)
    sys.stderr.flush()
    section = render(results, args.rows, args.repeat)
    sys.stdout.write(section + "\n")
    if not args.no_doc:
        from bench.common import write_section

        write_section(DOC, section, (BEGIN, END), "## Data stages across commits\n\n")


if __name__ == "__main__":
    main()
