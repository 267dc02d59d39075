"""The core network and the training loop: masks, determinism, early stopping, resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bionic_core.contract.layers import HiddenLayer
from bionic_core.network.model import MaskedHiddenLayer, count_parameters
from bionic_core.training.loop import prepare, train_run
from bionic_core.training.metrics import classification_metrics, roc_auc_ovr

from .conftest import tiny_config


def test_masked_layer_computes_w_times_m_and_masked_weights_stay_zero():
    rng = np.random.default_rng(0)
    mask = (rng.random((5, 7)) < 0.4).astype(np.float32)
    layer = MaskedHiddenLayer(7, HiddenLayer("h", 5, mask=mask), activation="relu",
                              intra=False, post=[])
    x = torch.randn(4, 7)
    expected = torch.relu(x @ (layer.weight * torch.as_tensor(mask)).T + layer.bias)
    assert torch.allclose(layer(x), expected)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(5):
        optimizer.zero_grad()
        layer(torch.randn(8, 7)).sum().backward()
        optimizer.step()
    assert torch.all(layer.weight[torch.as_tensor(mask) == 0] == 0)


def test_intra_layer_term_is_one_masked_recurrent_step():
    intra = np.ones((3, 3), np.float32) - np.eye(3, dtype=np.float32)
    layer = MaskedHiddenLayer(2, HiddenLayer("h", 3, intra_mask=intra), activation="relu",
                              intra=True, post=[])
    with torch.no_grad():
        layer.intra_weight.fill_(0.5)
        layer.intra_weight.mul_(layer.intra_mask)
    x = torch.randn(4, 2)
    z = x @ layer.weight.T + layer.bias
    h0 = torch.relu(z)
    expected = torch.relu(z + h0 @ (0.5 * torch.as_tensor(intra)).T)
    assert torch.allclose(layer(x), expected, atol=1e-6)
    assert torch.all(torch.diagonal(layer.intra_weight) == 0)


def test_plain_model_shape_and_parameter_count(catalogue):
    _, model, plan = prepare(tiny_config(), catalogue)
    assert plan.sizes == [32, 32] and plan.source.startswith("uniform")
    assert model(torch.rand(2, 1, 48, 48)).shape == (2, 7)
    assert count_parameters(model) == (48 * 48 * 32 + 32) + (32 * 32 + 32) + (32 * 7 + 7)


def test_metrics_against_hand_computed_values():
    logits = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [5.0, 0, 0], [0, 0, 5.0]])
    labels = torch.tensor([0, 1, 1, 2])
    m = classification_metrics(logits, labels, ("a", "b", "c"))
    assert m["accuracy"] == 0.75
    assert m["confusion"] == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    # class a: P=1/2 R=1 F1=2/3; class b: P=1 R=1/2 F1=2/3; class c: F1=1
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert m["per_class"]["b"]["recall"] == 0.5
    # AUC: scores perfectly separate class c; ties handled as halves
    assert roc_auc_ovr(np.array([0, 1, 1]), np.array([[0.9], [0.1], [0.1]]))[0] == 1.0
    assert roc_auc_ovr(np.array([0, 1]), np.array([[0.5], [0.5]]))[0] == 0.5


def test_same_seed_same_metrics_and_different_seed_differs(catalogue):
    a = train_run(tiny_config(seed=3), catalogue)
    b = train_run(tiny_config(seed=3), catalogue)
    c = train_run(tiny_config(seed=4), catalogue)
    assert a.status == "finished" and a.epochs_run == 2
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
    assert a.val == b.val
    assert [r["train_loss"] for r in a.history] != [r["train_loss"] for r in c.history]


def test_learns_above_chance_and_reports_every_metric(catalogue):
    result = train_run(tiny_config(epochs=4, features=("conv_frontend", "layer_norm")),
                       catalogue)
    assert result.val["accuracy"] > 0.2  # 7 balanced classes: chance is ~0.14
    for key in ("accuracy", "macro_f1", "roc_auc", "per_class", "confusion"):
        assert key in result.val
    assert result.test is not None and result.test["n"] > 0
    assert result.dataset["is_demo"] is True


def test_early_stopping_restores_best_epoch(catalogue, monkeypatch):
    # An absurd learning rate makes validation worse after the first epoch.
    result = train_run(tiny_config(epochs=6, patience=2, lr=0.5), catalogue)
    assert result.epochs_run <= 6
    best = max(r["val_macro_f1"] for r in result.history)
    assert result.history[result.best_epoch - 1]["val_macro_f1"] == best
    if result.epochs_run < 6:
        assert result.epochs_run - result.best_epoch == 2
    assert result.val["macro_f1"] == pytest.approx(best)


@pytest.mark.parametrize("features", [(), ("synaptic_noise",)])
def test_checkpoint_resume_matches_uninterrupted_run(catalogue, tmp_path, features):
    """Also with noise: the run's private random streams are checkpointed with it."""
    full = train_run(tiny_config(epochs=3, features=features), catalogue)
    ckpt = tmp_path / "run.pt"
    train_run(tiny_config(epochs=2, features=features), catalogue, checkpoint=ckpt)
    resumed = train_run(tiny_config(epochs=3, features=features), catalogue, checkpoint=ckpt)
    assert resumed.resumed_from_epoch == 2
    assert [r["train_loss"] for r in resumed.history] == pytest.approx(
        [r["train_loss"] for r in full.history])
    assert resumed.val["accuracy"] == pytest.approx(full.val["accuracy"])


def test_divergence_is_reported_not_raised(catalogue, register_plugin):
    from torch import nn

    from bionic_core.contract.features import Feature
    from bionic_core.contract.hookspecs import hookimpl

    class NanLoss(nn.Module):
        def forward(self, logits, targets):
            return logits.sum() * float("nan")

    class Diverging:
        @hookimpl
        def bionic_feature(self):
            return Feature(name="nan_loss", group="functional", help="test: NaN loss")

        @hookimpl
        def bionic_criterion(self):
            return NanLoss()

    register_plugin(Diverging())
    result = train_run(tiny_config(features=("nan_loss",)), catalogue)
    assert result.status == "failed"
    assert "diverged: training loss is nan in epoch 1" in result.reason
