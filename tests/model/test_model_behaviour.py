"""Model tests: the registered champion on raw rows, invariance, direction, minimum quality."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from flows.training import training
from loopml.config import deep_merge, load_params
from loopml.datagen import generate_churn
from loopml.tracking import setup_tracking, tracking_uri
from tests.conftest import REPO_ROOT, SHARED, make_dvc_repo, needs_shared, small_params

pytestmark = [pytest.mark.model, pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

CANDIDATES = {
    "train": {
        "candidates": [
            {"name": "baseline", "kind": "dummy"},
            {"name": "hgb", "kind": "hist_gradient_boosting", "params": {"max_iter": 200}},
            {"name": "mlp", "kind": "lightning"},
        ]
    }
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None) -> dict[str, Any]:
    import mlflow

    repo = make_dvc_repo(tmp_path_factory.mktemp("model") / "project")
    raw = deep_merge(
        small_params(), {"data": {"source": {"generator": {"n_rows": 12000}}}, **CANDIDATES}
    )
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))
    result = training(params_path=str(repo / "params.yaml"))
    params = load_params(repo / "params.yaml")
    setup_tracking(params)
    model = mlflow.pyfunc.load_model(f"models:/{params.promote.model_name}@champion")
    return {"result": result, "model": model, "params": params, "repo": repo}


def _rows(n: int = 400, seed: int = 77) -> pd.DataFrame:
    return generate_churn(n, seed=seed, id_start=900_000)


def test_predicts_on_raw_rows_with_missing_values_and_unseen_categories(trained: dict) -> None:
    rows = _rows(50).drop(columns=["churned", "next_month_spend"])
    rows.loc[rows.index[:10], ["age", "nps_score", "monthly_charges", "tenure_months"]] = np.nan
    rows.loc[rows.index[10:20], "country"] = "Atlantis"
    rows.loc[rows.index[20:25], "device"] = None
    out = trained["model"].predict(rows)
    assert len(out) == len(rows)
    assert out["probability"].between(0, 1).all() and out["probability"].notna().all()
    assert set(out["prediction"]) <= {True, False}


def test_entity_id_does_not_change_predictions(trained: dict) -> None:
    rows = _rows()
    a = trained["model"].predict(rows)["probability"].to_numpy()
    b = trained["model"].predict(rows.assign(customer_id=rows["customer_id"] + 123_456))[
        "probability"
    ]
    np.testing.assert_array_equal(a, b.to_numpy())


@pytest.mark.parametrize(
    ("column", "low", "high", "direction"),
    [
        ("days_since_last_login", 1.0, 60.0, +1),  # inactivity raises churn
        ("support_tickets_90d", 0, 6, +1),  # problems raise churn
        ("last_payment_failed", False, True, +1),  # a failed payment raises churn
        ("annual_contract", False, True, -1),  # a contract lowers it
        ("sessions_last_30d", 0, 40, -1),  # engagement lowers it
    ],
)
def test_direction_of_the_documented_relation(
    trained: dict, column: str, low: Any, high: Any, direction: int
) -> None:
    rows = _rows()
    p_low = trained["model"].predict(rows.assign(**{column: low}))["probability"].mean()
    p_high = trained["model"].predict(rows.assign(**{column: high}))["probability"].mean()
    assert direction * (p_high - p_low) > 0.02, (p_low, p_high)


def test_best_candidate_beats_the_baseline_clearly(trained: dict) -> None:
    result = trained["result"]
    scores = {c.name: c.test for c in result.candidates}
    assert result.best != "baseline"
    assert scores["baseline"] == pytest.approx(0.5)
    assert scores[result.best] > scores["baseline"] + 0.2
    assert result.decision.promoted


def test_dvc_metrics_and_plots_are_written(trained: dict) -> None:
    reports = trained["params"].path("reports")
    metrics = json.loads((reports / "metrics.json").read_text())
    assert metrics["best"] == trained["result"].best and metrics["test"]["roc_auc"] > 0.7
    for name in (
        "roc.csv",
        "pr.csv",
        "calibration.csv",
        "roc_curve.png",
        "confusion_matrix.png",
        "permutation_importance.png",
        "worst_errors.csv",
        "permutation_importance.csv",
    ):
        assert (reports / "plots" / name).is_file(), name
    importance = pd.read_csv(reports / "plots" / "permutation_importance.csv")
    assert importance.iloc[0]["feature"] in {
        "days_since_last_login",
        "sessions_last_30d",
        "annual_contract",
        "monthly_charges",
        "support_tickets_90d",
        "tenure_months",
    }


def test_only_the_selected_candidate_is_analyzed_in_mlflow(trained: dict) -> None:
    """Every candidate's run holds its test metrics and curves; permutation importance, worst
    errors and figures only the selected one's (one evaluation per candidate, nothing twice)."""
    import mlflow

    client = mlflow.MlflowClient()
    analysis = {"permutation_importance.csv", "worst_errors.csv", "roc_curve.png"}
    result = trained["result"]
    for cand in result.candidates:
        files = {Path(a.path).name for a in client.list_artifacts(cand.run_id, "evaluation")}
        assert {"metrics.json", "roc.csv"} <= files, cand.name
        if cand.name == result.best:
            assert analysis <= files
        else:
            assert not analysis & files, cand.name
        metrics = client.get_run(cand.run_id).data.metrics
        assert metrics["test_roc_auc"] == pytest.approx(cand.test)


def test_mlflow_models_predict_cli_on_raw_rows(trained: dict, tmp_path: Path) -> None:
    params = trained["params"]
    rows = _rows(5).drop(columns=["churned", "next_month_spend", "customer_id"])
    rows["event_time"] = rows["event_time"].astype(str)
    rows["signup_date"] = rows["signup_date"].astype(str)
    payload = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
    (tmp_path / "in.json").write_text(json.dumps(payload))
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri(params)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "models",
            "predict",
            "-m",
            f"models:/{params.promote.model_name}@champion",
            "-i",
            str(tmp_path / "in.json"),
            "-t",
            "json",
            "-o",
            str(tmp_path / "out.json"),
            "--env-manager",
            "local",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads((tmp_path / "out.json").read_text())
    assert len(out["predictions"]) == 5


@needs_shared("adult")
def test_adult_reaches_85_percent_accuracy_on_its_test_file(tmp_path: Path) -> None:
    import mlflow

    from loopml.schema import conform_frame
    from loopml.sources import read_batch

    repo = make_dvc_repo(tmp_path / "adult")
    raw = yaml.safe_load((REPO_ROOT / "examples" / "adult" / "params.yaml").read_text())
    raw = deep_merge(
        raw,
        {
            "data": {
                "source": {"file": {"path": str(SHARED / "adult"), "pattern": "adult-train.csv"}}
            },
            "train": {
                "candidates": [
                    {"name": "baseline", "kind": "dummy"},
                    {"name": "hgb", "kind": "hist_gradient_boosting", "params": {"max_iter": 300}},
                ]
            },
            "validate": {"data_docs": False},
        },
    )
    (repo / "params.yaml").write_text(yaml.safe_dump(raw))
    result = training(params_path=str(repo / "params.yaml"))
    assert result.decision.promoted
    params = load_params(repo / "params.yaml")
    setup_tracking(params)
    model = mlflow.pyfunc.load_model(f"models:/{params.promote.model_name}@champion")
    source = params.data.source.model_copy(
        update={"file": params.data.source.file.model_copy(update={"pattern": "adult-test.csv"})}
    )
    clean = params.data.clean
    test = conform_frame(
        read_batch(source, repo), params.data.table.columns, clean.strip_whitespace, clean.rstrip
    )
    assert len(test) == 16_281
    predicted = model.predict(test.drop(columns=["income"]))["prediction"]
    accuracy = float((predicted.to_numpy() == test["income"].to_numpy()).mean())
    assert accuracy >= 0.85, accuracy


@needs_shared("adult")
def test_default_boosting_is_no_worse_than_scikit_learns_on_adult(tmp_path: Path) -> None:
    """Issue 9's quality default on a real categorical dataset: loopml's default
    gradient-boosting candidate against ``HistGradientBoostingClassifier()`` on the same
    split, fed the one-hot features (what loopml gave it before) and the raw codes. Within
    0.002 ROC-AUC (measured here: 0.9285 against 0.9291 one-hot, on 9,768 test rows)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score

    from loopml.config import CandidateConfig
    from loopml.features import fit_transformers, transform
    from loopml.models import FitInputs, fit_candidate
    from loopml.schema import conform_frame
    from loopml.sources import read_batch
    from loopml.splits import split_frame

    raw = yaml.safe_load((REPO_ROOT / "examples" / "adult" / "params.yaml").read_text())
    raw["data"]["source"]["file"]["path"] = str(SHARED / "adult")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    params = load_params(tmp_path / "params.yaml")
    table, clean = params.data.table, params.data.clean
    frame = conform_frame(
        read_batch(params.data.source, tmp_path),
        table.columns,
        clean.strip_whitespace,
        clean.rstrip,
    )
    s = split_frame(frame, table, params.features.split, seed=1)
    both = fit_transformers(s.train, table, params.features)
    classes = sorted(s.train[table.target].unique())
    ys = [(p[table.target] == classes[1]).astype(int).to_numpy() for p in (s.train, s.val, s.test)]
    xs = {
        e: [transform(both.of(e), p, table) for p in (s.train, s.val, s.test)]
        for e in ("onehot", "ordinal")
    }
    mask = [str(c).startswith("cat__") for c in both.ordinal.get_feature_names_out()]
    ours = fit_candidate(
        CandidateConfig(name="hgb", kind="hist_gradient_boosting"), 0,
        FitInputs((xs["ordinal"][0], ys[0], xs["ordinal"][1], ys[1]), "classification", 2, mask),
        "roc_auc", params.train.lightning, 1,
    )  # fmt: skip
    ours_auc = roc_auc_score(ys[2], ours.predictor.predict_proba(xs["ordinal"][2])[:, 1])
    for encoding, x in xs.items():
        sk = HistGradientBoostingClassifier(random_state=1).fit(x[0], ys[0])
        sk_auc = roc_auc_score(ys[2], sk.predict_proba(x[2])[:, 1])
        assert ours_auc >= sk_auc - 0.002, (encoding, ours_auc, sk_auc)
