"""params.yaml loading: typed models, key-path errors, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from loopml.config import deep_merge, load_params, params_from_dict, parse_dotted
from loopml.exceptions import ConfigError
from tests.conftest import BASE_PARAMS, REPO_ROOT


def test_shipped_params_load() -> None:
    params = load_params(REPO_ROOT / "params.yaml")
    assert params.data.table.target == "churned"
    assert params.data.source.kind == "generator"
    assert params.root == REPO_ROOT
    assert params.path("features") == REPO_ROOT / "data" / "features"
    assert "next_month_spend" not in params.data.table.feature_columns
    assert "customer_id" not in params.data.table.feature_columns


@pytest.mark.parametrize(
    "example", sorted(p.parent.name for p in (REPO_ROOT / "examples").glob("*/params.yaml"))
)
def test_example_params_load(example: str) -> None:
    params = load_params(REPO_ROOT / "examples" / example / "params.yaml")
    assert params.data.source.kind == ("generator" if example == "derived" else "file")
    assert params.data.table.target in params.data.table.columns
    if example == "derived":  # a duration in minutes from two timestamps
        assert params.data.table.kinds["account_age_minutes"] == "numeric"
        assert "account_age_minutes" in params.data.table.feature_columns


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"data": {"source": {"generator": {"n_rowz": 5}}}},
            "data.source.generator.n_rowz: unknown key (did you mean 'n_rows'?)",
        ),
        ({"trian": {}}, "trian: unknown key (did you mean 'train'?)"),
        (
            {"data": {"source": {"generator": {"n_rows": "many"}}}},
            "data.source.generator.n_rows: Input should be a valid integer",
        ),
        (
            {"data": {"source": {"generator": {"n_rows": -5}}}},
            "data.source.generator.n_rows: Input should be greater than 0",
        ),
        (
            {"features": {"split": {"test_size": 0.7}}},
            "features.split.test_size: Input should be less than 0.5",
        ),
        (
            {"train": {"time_budget": 0}},
            "train.time_budget: Input should be greater than 0",
        ),
        (
            {"validate": {"severity": {"nulls": "fatal"}}},
            "validate.severity.nulls: Input should be 'blocking', 'warning' or 'off'",
        ),
        (
            {"features": {"clip_quantiles": [0.9, 0.1]}},
            "features.clip_quantiles: lower quantile must be below upper quantile",
        ),
        (
            {"data": {"source": {"kind": "sql"}}},
            "data.source.sql: required when kind is 'sql'",
        ),
        (
            {"data": {"source": {"kind": "url", "url": {"url": "ftp://x"}}}},
            "data.source.url.url: must start with http:// or https://",
        ),
        (
            {"data": {"schema": {"target": "nope"}}},
            "data.schema.target: 'nope' is not among columns",
        ),
        ({"project": {"seed": 1.5}}, "project.seed: Input should be a valid integer"),
        (
            {"features": {"fit_rows": 10}},
            "features.fit_rows: Input should be greater than or equal to 1000",
        ),
    ],
)
def test_bad_values_name_the_key(override: dict, expected: str) -> None:
    raw = deep_merge(BASE_PARAMS, override)
    with pytest.raises(ConfigError) as info:
        params_from_dict(raw)
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems


def test_every_problem_is_reported_at_once() -> None:
    raw = deep_merge(
        BASE_PARAMS, {"project": {"seed": -1}, "features": {"scale": "log"}, "extra": 1}
    )
    with pytest.raises(ConfigError) as info:
        params_from_dict(raw)
    assert len(info.value.problems) == 3
    assert "params.yaml" in str(info.value)


def test_missing_required_section() -> None:
    raw = {k: v for k, v in BASE_PARAMS.items() if k != "data"}
    with pytest.raises(ConfigError, match="data: required key is missing"):
        params_from_dict(raw)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "params.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_params(bad)


def test_overrides_replace_sections_without_touching_the_file(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(BASE_PARAMS))
    before = path.read_text()
    params = load_params(path, {"data": {"source": {"generator": {"n_rows": 123}}}})
    assert params.data.source.generator.n_rows == 123
    assert params.data.source.generator.seed == BASE_PARAMS["data"]["source"]["generator"]["seed"]
    assert path.read_text() == before
    with pytest.raises(ConfigError, match="n_rows"):
        load_params(path, {"data": {"source": {"generator": {"n_rows": 0}}}})


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["a.b=1"], {"a": {"b": 1}}),
        (["a.b=true", "a.c=x"], {"a": {"b": True, "c": "x"}}),
        (["train.layers=[64, 32]"], {"train": {"layers": [64, 32]}}),
        (["x=null"], {"x": None}),
    ],
)
def test_parse_dotted(items: list[str], expected: dict) -> None:
    assert parse_dotted(items) == expected


@pytest.mark.parametrize("item", ["novalue", "=3"])
def test_parse_dotted_rejects_malformed(item: str) -> None:
    with pytest.raises(ConfigError):
        parse_dotted([item])


def test_deep_merge_does_not_mutate_inputs() -> None:
    base = {"a": {"b": 1, "c": [1]}}
    over = {"a": {"b": 2}}
    merged = deep_merge(base, over)
    assert merged == {"a": {"b": 2, "c": [1]}}
    assert base == {"a": {"b": 1, "c": [1]}}
    merged["a"]["c"].append(2)
    assert base["a"]["c"] == [1]


def test_digest_changes_with_any_parameter() -> None:
    a = params_from_dict(BASE_PARAMS)
    b = params_from_dict(deep_merge(BASE_PARAMS, {"features": {"scale": "robust"}}))
    assert a.digest() == params_from_dict(BASE_PARAMS).digest()
    assert a.digest() != b.digest()


def test_dvc_yaml_lists_the_params_sections() -> None:
    dvc = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
    declared = {
        p.split(".")[0] for stage in dvc["stages"].values() for p in stage.get("params", [])
    }
    assert {"data", "validate", "features", "project"} <= declared
    for stage in dvc["stages"].values():
        for key in stage.get("params", []):
            node = BASE_PARAMS
            for part in key.split("."):
                node = node[part]  # every listed key exists in params.yaml


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            {"features": {"split": {"method": "time"}}, "data": {"schema": {"time_column": None}}},
            "features.split.method: 'time' needs data.schema.time_column, which is not set",
        ),
        (
            {"features": {"split": {"method": "group"}}},
            "features.split.group_column: required when method is 'group'",
        ),
        (
            {"features": {"split": {"method": "group", "group_column": "household"}}},
            "features.split.group_column: 'household' is not among data.schema.columns",
        ),
        (
            {
                "features": {"split": {"method": "stratified"}},
                "data": {
                    "schema": {
                        "task": "regression",
                        "target": "next_month_spend",
                        "drop_columns": ["churned"],
                    }
                },
                "evaluate": {"primary_metric": "rmse"},
                "promote": {"floors": {}},
            },
            "features.split.method: 'stratified' needs a classification task",
        ),
        (
            {"features": {"split": {"val_size": 0.45, "test_size": 0.4}}},
            "features.split: val_size + test_size must leave at least 20 % of rows to train",
        ),
        (
            {"data": {"schema": {"derived": {"x": "tenure_months +"}}}},
            "data.schema.derived.x: not a valid expression",
        ),
        (
            {"data": {"schema": {"derived": {"x": "median(tenure_months)"}}}},
            "data.schema.derived.x: unknown function 'median'",
        ),
        (
            {"data": {"schema": {"derived": {"x": "tenure_years * 12"}}}},
            "data.schema.derived.x: unknown column 'tenure_years'",
        ),
        (
            {"data": {"schema": {"derived": {"x": "__import__('os')"}}}},
            "data.schema.derived.x: unknown function '__import__'",
        ),
        (
            {"data": {"schema": {"derived": {"x": "plan.upper()"}}}},
            "data.schema.derived.x: unknown function 'plan.upper'",
        ),
    ],
)
def test_every_split_and_derived_constraint_is_checked_at_load(
    override: dict, expected: str
) -> None:
    raw = deep_merge(BASE_PARAMS, override)
    with pytest.raises(ConfigError) as info:
        params_from_dict(raw)
    assert any(p.startswith(expected) for p in info.value.problems), info.value.problems
    # one message per problem, each naming its key (a message is never split in two)
    assert not any(p.startswith("<root>") for p in info.value.problems), info.value.problems


def test_derived_columns_become_features_and_their_inputs_model_inputs() -> None:
    raw = deep_merge(
        BASE_PARAMS,
        {
            "data": {
                "schema": {
                    "derived": {
                        "tenure_years": "tenure_months / 12",
                        "late": {"expr": "hour(event_time) >= 22"},
                        "plan_lower": "lower(plan)",
                    },
                    "drop_columns": ["next_month_spend", "tenure_months"],
                }
            }
        },
    )
    table = params_from_dict(raw).data.table
    assert table.kinds["tenure_years"] == "numeric" and table.kinds["late"] == "boolean"
    assert table.kinds["plan_lower"] == "categorical"
    assert {"tenure_years", "late", "plan_lower"} <= set(table.feature_columns)
    assert "tenure_months" not in table.feature_columns  # dropped as a feature ...
    assert "tenure_months" in table.input_kinds  # ... but the served model still needs it
    assert list(table.feature_derivations) == ["tenure_years", "late", "plan_lower"]
