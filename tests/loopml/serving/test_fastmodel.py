"""The compiled predictors of the serving fast path: for every estimator loopml trains that has
one, the same output as the estimator on the same features (native categorical features,
unseen categories and missing values included); anything else is predicted by the estimator."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)
from sklearn.linear_model import LogisticRegression, Ridge

from loopml.config import FeaturesConfig
from loopml.features import categorical_mask, fit_transformers
from loopml.pyfunc import LoopmlModel
from loopml.serving.fastmodel import compile_predictor
from loopml.serving.fastpath import compile_features
from loopml.serving.inputs import check_rows, rows_frame
from tests.loopml.serving.sample import churn_sample


@pytest.fixture(scope="module")
def churn() -> dict[str, Any]:
    sample = churn_sample(train_rows=3000, train_seed=21, rows=300, seed=22)
    for i, rec in enumerate(sample["records"]):  # unseen categories and missing values
        if i % 3 == 0:
            rec["country"], rec["plan"] = "Atlantis", None
        if i % 4 == 0:
            rec["age"], rec["device"], rec["autopay"] = None, None, None
    cfg = FeaturesConfig()
    return {**sample, "transformers": fit_transformers(sample["train"], sample["schema"], cfg)}


def _fit(churn: dict[str, Any], estimator: Any, encoding: str, target: str) -> LoopmlModel:
    transformer = churn["transformers"].of(encoding)
    model = LoopmlModel(transformer, estimator, "", churn["kinds"])
    x = model.features(churn["train"])
    y = churn["train"][target].to_numpy()
    boosting = HistGradientBoostingClassifier | HistGradientBoostingRegressor
    if isinstance(estimator, boosting) and encoding == "ordinal":
        # category codes split on natively, as loopml fits trees
        estimator.set_params(categorical_features=np.asarray(categorical_mask(transformer)))
    estimator.fit(x, y)
    classification = target != "next_month_spend"
    model.task = "classification" if classification else "regression"
    model.classes = list(estimator.classes_) if classification else None
    return model


def _three_classes(churn: dict[str, Any]) -> None:
    tenure = churn["train"]["tenure_months"]
    churn["train"]["tenure_band"] = np.digitize(tenure, np.nanquantile(tenure, [1 / 3, 2 / 3]))


CASES = {
    "boosting-native-categories": (lambda: HistGradientBoostingClassifier(max_iter=60), "ordinal"),
    "boosting-one-hot": (lambda: HistGradientBoostingClassifier(max_iter=60), "onehot"),
    "boosting-regressor": (lambda: HistGradientBoostingRegressor(max_iter=60), "ordinal"),
    "logistic-binary": (lambda: LogisticRegression(max_iter=1000), "onehot"),
    "logistic-three-classes": (lambda: LogisticRegression(max_iter=1000), "onehot"),
    "ridge": (lambda: Ridge(), "onehot"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_compiled_predictor_equals_the_estimator(churn: dict[str, Any], case: str) -> None:
    make, encoding = CASES[case]
    target = "churned"
    if "regressor" in case or case == "ridge":
        target = "next_month_spend"
    elif "three" in case:
        _three_classes(churn)
        target = "tenure_band"
    model = _fit(churn, make(), encoding, target)
    features = compile_features(model)
    assert features is not None
    predict = compile_predictor(model.predictor, model.task, features.probe)
    assert predict is not None

    checked = check_rows(churn["records"], churn["kinds"], frozenset())
    x = features(checked)
    fast = predict(x)
    est = model.predictor
    reference = est.predict_proba(x) if model.task == "classification" else est.predict(x)
    assert fast.shape == reference.shape
    np.testing.assert_allclose(fast, reference, rtol=1e-9, atol=1e-12)
    # and the whole served path equals the pyfunc model on the same records
    np.testing.assert_allclose(
        fast, model.predict_output(rows_frame(checked, churn["kinds"])), rtol=1e-6, atol=1e-9
    )


@pytest.mark.parametrize(
    "estimator",
    [DummyClassifier(), RandomForestClassifier(n_estimators=5, random_state=0)],
    ids=["dummy", "random-forest"],
)
def test_other_estimators_are_predicted_by_the_estimator(
    churn: dict[str, Any], estimator: Any, caplog: pytest.LogCaptureFixture
) -> None:
    model = _fit(churn, estimator, "onehot", "churned")
    features = compile_features(model)
    assert features is not None
    with caplog.at_level("INFO", logger="loopml.serving.fastmodel"):
        assert compile_predictor(model.predictor, model.task, features.probe) is None
    assert f"no fast path for {type(estimator).__name__}" in caplog.text


def test_a_compiled_predictor_that_disagrees_is_refused(
    churn: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe comparison is a real gate: an estimator whose output differs (here by one
    part in a million) keeps the server on the estimator."""
    model = _fit(churn, HistGradientBoostingClassifier(max_iter=30), "ordinal", "churned")
    features = compile_features(model)
    assert features is not None
    est = model.predictor
    real = est.predict_proba
    assert compile_predictor(est, model.task, features.probe) is not None
    monkeypatch.setattr(est, "predict_proba", lambda x: real(x) * (1 + 1e-6))
    assert compile_predictor(est, model.task, features.probe) is None
