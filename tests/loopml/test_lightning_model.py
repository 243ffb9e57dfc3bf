"""The Lightning candidate: trains on CPU with settings from configuration; GPU path on CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from loopml.config import LightningConfig
from loopml.lightning_model import fit_lightning, resolve_hardware


def _data(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype(np.float32)
    logit = 2.0 * x[:, 0] - 1.5 * x[:, 1] * x[:, 2]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    cut = int(n * 0.8)
    return x[:cut], y[:cut], x[cut:], y[cut:]


CFG = LightningConfig(max_epochs=6, hidden_sizes=[16], batch_size=128, patience=2)


def test_cpu_settings_come_from_configuration() -> None:
    if torch.cuda.is_available():
        pytest.skip("checks the CPU resolution; this machine has CUDA")
    assert resolve_hardware(CFG) == ("cpu", "32-true")
    assert (
        resolve_hardware(CFG.model_copy(update={"precision_cpu": "bf16-mixed"}))[1] == "bf16-mixed"
    )


def test_trains_with_early_stopping_and_restores_the_best_epoch() -> None:
    x_tr, y_tr, x_va, y_va = _data()
    predictor = fit_lightning((x_tr, y_tr, x_va, y_va), "classification", 2, CFG, seed=1)
    epochs = predictor.history
    assert 1 <= len(epochs) <= CFG.max_epochs
    assert {"train_loss", "val_loss", "lr", "epoch"} <= set(epochs[-1])
    best = min(range(len(epochs)), key=lambda i: epochs[i]["val_loss"])
    assert predictor.best_epoch == epochs[best]["epoch"]
    proba = predictor.predict_proba(x_va)
    assert proba.shape == (len(x_va), 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    accuracy = (proba.argmax(axis=1) == y_va).mean()
    assert accuracy > 0.7  # learns the relation, well above the majority class
    assert predictor.device_used == ("gpu" if torch.cuda.is_available() else "cpu")


def test_deterministic_on_cpu_for_a_seed() -> None:
    x_tr, y_tr, x_va, y_va = _data()
    a = fit_lightning((x_tr, y_tr, x_va, y_va), "classification", 2, CFG, seed=3).predict_proba(
        x_va
    )
    b = fit_lightning((x_tr, y_tr, x_va, y_va), "classification", 2, CFG, seed=3).predict_proba(
        x_va
    )
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_regression_is_unscaled_back() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1500, 4)).astype(np.float32)
    y = 100.0 + 20.0 * x[:, 0] + rng.normal(0, 2, 1500)
    cfg = CFG.model_copy(update={"max_epochs": 40, "learning_rate": 0.01, "patience": 5})
    predictor = fit_lightning(
        (x[:1200], y[:1200], x[1200:], y[1200:]), "regression", 0, cfg, seed=0
    )
    pred = predictor.predict(x[1200:])
    assert abs(pred.mean() - y[1200:].mean()) < 5.0
    assert np.corrcoef(pred, y[1200:])[0, 1] > 0.9


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_gpu_path_uses_gpu_precision() -> None:
    cfg = CFG.model_copy(update={"precision_gpu": "bf16-mixed"})
    assert resolve_hardware(cfg) == ("gpu", "bf16-mixed")
    x_tr, y_tr, x_va, y_va = _data()
    predictor = fit_lightning((x_tr, y_tr, x_va, y_va), "classification", 2, cfg, seed=1)
    assert predictor.device_used == "gpu"
    assert (predictor.predict_proba(x_va).argmax(axis=1) == y_va).mean() > 0.7


def test_the_learning_rate_drops_when_the_validation_loss_stalls() -> None:
    """The plateau schedule is stepped by loopml (manual optimization) on each epoch's
    validation loss: the rate falls only after an epoch that did not improve it."""
    x_tr, y_tr, x_va, y_va = _data(4000)
    cfg = CFG.model_copy(
        update={"max_epochs": 12, "patience": 12, "scheduler_patience": 0, "learning_rate": 0.01}
    )
    epochs = fit_lightning((x_tr, y_tr, x_va, y_va), "classification", 2, cfg, seed=1).history
    rates = [e["lr"] for e in epochs]
    assert rates[0] == 0.01 and min(rates) < 0.01, rates
    first_drop = next(i for i, r in enumerate(rates) if r < 0.01)
    losses = [e["val_loss"] for e in epochs]
    # the schedule stepped on epoch first_drop - 1, which did not beat the best before it
    assert losses[first_drop - 1] >= min(losses[: first_drop - 1]) * (1 - 1e-4), (rates, losses)
