"""A drafted ``params.yaml`` as commented YAML: every inferred choice with the reason beside it,
so a person can review it before (or after) the first run."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from loopml.drafting.infer import Draft
from loopml.drafting.sample import Sample


def _scalar(value: Any) -> str:
    """A YAML scalar (JSON's quoting is valid YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    text = str(value)
    plain = re.fullmatch(r"[A-Za-z_][\w.\-/]*", text) and text.lower() not in (
        "true", "false", "yes", "no", "null", "on", "off", "y", "n",
    )  # fmt: skip
    return text if plain else json.dumps(text)


def _mapping(data: dict[str, Any], indent: int) -> list[str]:
    lines = []
    pad = " " * indent
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"{pad}{_scalar(key)}:")
            lines.extend(_mapping(value, indent + 2))
        else:
            lines.append(f"{pad}{_scalar(key)}: {_scalar(value)}")
    return lines


def _name(sample: Sample, location: str) -> str:
    stem = Path(location.split("?")[0].rstrip("/")).stem or "data"
    return re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_").lower() or "data"


def _source(sample: Sample, params_dir: Path) -> dict[str, Any]:
    source = json.loads(json.dumps(sample.source))
    if source["kind"] == "file":
        path = Path(source["file"]["path"])
        try:
            source["file"]["path"] = str(path.relative_to(params_dir.resolve()))
        except ValueError:
            source["file"]["path"] = str(path)
    return source


def _columns(draft: Draft) -> list[str]:
    width = max(len(_scalar(c)) for c in draft.columns) + 1
    lines = []
    for col, kind in draft.columns.items():
        note = draft.notes.get(col, "")
        role = (
            " (target)" if col == draft.target
            else " (id)" if col == draft.id_column
            else " (time)" if col == draft.time_column
            else ""
        )  # fmt: skip
        lines.append(f"      {_scalar(col) + ':':<{width + 1}} {kind:<12} # {note}{role}")
    return lines


def _candidates(draft: Draft) -> list[str]:
    big = draft.rows >= 50_000
    return [
        "  candidates:",
        "    - {name: baseline, kind: dummy}        # the floor every real model must clear",
        "    - {name: linear, kind: linear}",
        "    - name: hgb                            # gradient boosting, categories split natively",
        "      kind: hist_gradient_boosting         # scikit-learn's defaults",
        "      time_budget: 600                     # seconds; then the best so far is kept",
        "    - {name: mlp, kind: lightning, time_budget: 600}",
        "  lightning:",
        f"    max_epochs: {15 if big else 30}",
        f"    batch_size: {1024 if big else 256}",
    ]


def _data(draft: Draft, sample: Sample, params_dir: Path) -> list[str]:
    """The ``data`` section: source, schema (roles and drops with reasons), clean."""
    lines = ["data:", "  source:", *_mapping(_source(sample, params_dir), 4), "  schema:"]
    classes = f"   # {len(draft.classes)} classes" if draft.classes else ""
    lines += [f"    task: {draft.task}{classes}", f"    target: {_scalar(draft.target)}"]
    if draft.id_column:
        lines.append(f"    id_column: {_scalar(draft.id_column)}   # unique per row: not a feature")
    if draft.time_column:
        lines.append(f"    time_column: {_scalar(draft.time_column)}   # splits by time")
    if draft.drop:
        lines.append("    drop_columns:")
        lines += [f"      - {_scalar(c)}   # {why}" for c, why in draft.drop.items()]
    lines += ["    columns:", *_columns(draft)]
    if draft.rstrip:
        lines += ["  clean:", "    rstrip:   # the target's classes come in two spellings"]
        lines += [f"      {_scalar(c)}: {_scalar(v)}" for c, v in draft.rstrip.items()]
    return lines


_SPLITS = {
    "time": "by the time column: the last rows test",
    "order": "in file order: the first rows train, the last rows test",
    "stratified": "random, class shares kept",
    "random": "random",
}


def render(draft: Draft, sample: Sample, location: str, params_dir: Path) -> str:
    """The commented params.yaml of a draft (paths relative to ``params_dir``)."""
    name = _name(sample, location)
    metric = "rmse" if draft.task == "regression" else "roc_auc"
    return "\n".join(
        [
            f"# Drafted by `loopml init --from {location}` from a sample of {draft.rows:,} rows.",
            "# Every choice below was inferred; the comments say from what. Review, then run:",
            "#   loopml run -p <this file>",
            *[f"# check: {w}" for w in draft.warnings],
            "project:",
            f"  name: {name}",
            "  seed: 42",
            "",
            "paths:",
            f"  suite: gx/{name}_suite.json   # the expectation suite, profiled on the first run",
            "",
            "tracking:",
            f"  experiment: loopml-{name}",
            "",
            *_data(draft, sample, params_dir),
            "",
            "validate:",
            f"  suite_name: {name}",
            f"  min_rows: {max(10, min(100, draft.rows // 10))}",
            "",
            "features:",
            f"  split: {{method: {draft.split}}}   # {_SPLITS[draft.split]}",
            "",
            "train:",
            *_candidates(draft),
            "",
            "evaluate:",
            f"  primary_metric: {metric}",
            "",
            "promote:",
            f"  model_name: {name}-model",
            "  floors: {}   # e.g. {roc_auc: 0.8}: a model must reach these to become champion",
            "",
            "monitor:",
            f"  experiment: loopml-{name}-monitoring",
            "",
        ]
    )
