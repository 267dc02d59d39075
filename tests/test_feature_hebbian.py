"""hebbian: the rules' direction on hand-computed examples, homeostasis, masks, boundedness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from bionic_plugins import hebbian

from bionic_core.contract.errors import BionicError
from bionic_core.contract.layers import HiddenLayer
from bionic_core.network.model import MaskedHiddenLayer
from bionic_core.training.loop import prepare, train_run

from .conftest import MaskPlugin, tiny_config


def test_oja_step_on_a_hand_computed_example():
    # Two units, three inputs; unit 1 may not see input 3 (mask). One sample x = (1, 1, 1),
    # weights w1 = (1, 0, 0), w2 = (0, 0, 1): both units fire y = 1.
    weight = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    x = torch.tensor([[1.0, 1.0, 1.0]])
    y = torch.tensor([[1.0, 1.0]])
    new = hebbian.oja_step(weight, x, y, mask, rate=0.1)
    # ĥ1 = (1, 1, 0)/√3 (masked), ĥ2 = (1, 1, 1)/√3; u = w + 0.1·ĥ; w' = u/‖u‖ (‖w‖ = 1)
    a = 0.1 / math.sqrt(3)
    u1 = torch.tensor([1 + a, a, 0.0])
    u2 = torch.tensor([a, a, 1 + a])
    expected = torch.stack([u1 / u1.norm(), u2 / u2.norm()])
    assert torch.allclose(new, expected, atol=1e-6)
    assert new[0, 2] == 0  # the masked synapse stays exactly zero
    assert torch.allclose(new.norm(dim=1), weight.norm(dim=1))  # lengths held
    cos_before = torch.cosine_similarity(weight, x, dim=1)
    cos_after = torch.cosine_similarity(new, x, dim=1)
    assert (cos_after > cos_before).all()  # each unit turned towards the input it responds to


def test_oja_turns_at_most_rate_radians_and_silent_units_stay():
    weight = torch.randn(5, 20)
    x = torch.randn(64, 20) * 7
    y = torch.relu(x @ weight.T)
    y[:, 0] = 0  # a silent unit does not learn
    new = hebbian.oja_step(weight, x, y, None, rate=0.05)
    assert torch.equal(new[0], weight[0])
    angle = torch.arccos(torch.cosine_similarity(new, weight, dim=1).clamp(-1, 1))
    assert angle.max() <= 0.05 + 1e-4 and angle[1:].min() > 0


def test_covariance_rule_ignores_the_mean_input_that_oja_follows():
    # Non-negative inputs with a large common component (1, 1, 1, 1) and one varying input
    # (the first) that the unit's rate follows. Oja turns the unit towards the mean input;
    # the covariance form only towards the varying input.
    torch.manual_seed(0)
    weight = torch.tensor([[0.0, 0.0, 0.0, 1.0]])
    drive = torch.rand(256, 1)
    x = torch.cat([drive, torch.ones(256, 3)], dim=1) + 1.0
    y = 2.0 * drive
    trace = hebbian.LayerTrace(_layer(size=1), pre=x, post=y)
    params = {**PARAMS, "rate": 0.1, "homeostasis": "none"}
    moved = {}
    for rule in ("oja", "covariance"):
        trace.layer.weight.data.copy_(weight)
        trace.pre, trace.post = x, y
        with torch.no_grad():  # as after every optimizer step
            hebbian.update_layer(trace, {**params, "rule": rule})
        moved[rule] = trace.layer.weight.detach()[0] - weight[0]
    assert moved["oja"][1] > 0.01 and moved["oja"][2] > 0.01  # pulled to the mean input
    assert moved["covariance"][0] > 0.05  # towards the input the rate co-varies with
    assert moved["covariance"][1:3].abs().max() < 1e-6  # constant inputs: no pull


def test_bcm_potentiates_above_threshold_and_depresses_below():
    weight = torch.tensor([[0.6, 0.8]])
    x = torch.tensor([[1.0, 0.0]])
    y = torch.tensor([[2.0]])
    # φ = y (y − θ): θ = 1 → φ = 2 > 0, potentiation of the active input's synapse
    up = hebbian.bcm_step(weight, x, y, torch.tensor([1.0]), None, rate=0.1)
    # ĝ = ⟨φ x⟩ / (√⟨φ²⟩ √⟨‖x‖²⟩) = (1, 0); w' = w + 0.1 · ‖w‖ · ĝ = (0.7, 0.8)
    assert torch.allclose(up, torch.tensor([[0.7, 0.8]]))
    # θ = 3 → φ = −2 < 0: depression, w' = (0.5, 0.8)
    down = hebbian.bcm_step(weight, x, y, torch.tensor([3.0]), None, rate=0.1)
    assert torch.allclose(down, torch.tensor([[0.5, 0.8]]))


def _layer(mask: np.ndarray | None = None, size: int = 3, inputs: int = 4) -> MaskedHiddenLayer:
    torch.manual_seed(0)
    return MaskedHiddenLayer(inputs, HiddenLayer("h", size, mask=mask), activation="relu",
                             intra=False, post=[])


PARAMS = {"rule": "oja", "rate": 0.0, "homeostasis": "threshold", "homeostasis_rate": 0.1,
          "target": 0.5, "tau": 1.0}


def test_adaptive_threshold_raises_silent_units_and_lowers_busy_ones():
    layer = _layer()
    x = torch.rand(32, 4)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([-10.0, 10.0, 0.0]))  # never fires / always fires
    before = layer.bias.clone()
    y = torch.relu(x @ layer.weight.T + layer.bias)
    trace = hebbian.LayerTrace(layer, pre=x, post=y)
    with torch.no_grad():
        hebbian.update_layer(trace, PARAMS)
    change = layer.bias - before
    assert change[0] > 0 and change[1] < 0
    # b += η_h (target − p) ‖w‖ rms(x), p = 0 and 1
    rms_x = (x * x).sum(1).mean().sqrt() / 2
    expected = 0.1 * torch.tensor([0.5, -0.5]) * layer.weight.norm(dim=1)[:2] * rms_x
    assert torch.allclose(change[:2], expected, atol=1e-6)
    assert torch.allclose(trace.firing[:2], torch.tensor([0.0, 1.0]))




def _steps(model, ctx, n: int, *, lr: float = 1e-3, scale: float = 1.0) -> None:
    """``n`` Adam steps on random images, each followed by the after-step hooks."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(n):
        x = torch.rand(16, 1, 48, 48) * scale
        loss = torch.nn.functional.cross_entropy(model(x), torch.randint(0, 7, (16,)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            ctx.host.call("bionic_after_step", ctx=ctx, model=model, step=step + 1, lr=lr)


@pytest.mark.parametrize("rule", ["oja", "covariance", "bcm"])
def test_masked_weights_stay_zero_and_weights_move(catalogue, register_plugin, rule):
    register_plugin(MaskPlugin())
    config = tiny_config(features=("hebbian", "test_mask", "synaptic_noise"),
                         hidden_sizes=(24, 16, 12),
                         params={"hebbian": {"rule": rule, "rate": 1e-2},
                                 "synaptic_noise": {"target": "weights"}})
    ctx, model, _ = prepare(config, catalogue)
    layers = list(model.hidden)
    before = [hebbian.raw_weight(layer).detach().clone() for layer in layers]
    _steps(model, ctx, 20, lr=0.0)  # no optimizer movement: only the local rule acts
    for layer, old in zip(layers, before, strict=True):
        w = hebbian.raw_weight(layer)
        assert not torch.equal(w, old)
        if rule != "bcm":  # the normalised Oja rule (and its covariance form) only turns them
            assert torch.allclose(w.norm(dim=1), old.norm(dim=1), rtol=1e-4)
        if layer.mask is not None:
            assert torch.all(w[layer.mask == 0] == 0)


@pytest.mark.parametrize("rule", ["oja", "covariance", "bcm"])
def test_bounded_over_1000_steps_with_training(catalogue, register_plugin, rule):
    register_plugin(MaskPlugin())
    config = tiny_config(features=("hebbian", "test_mask"), hidden_sizes=(16, 16, 16),
                         params={"hebbian": {"rule": rule, "rate": 1e-2, "tau": 20.0,
                                             "homeostasis_rate": 1e-2}})
    ctx, model, _ = prepare(config, catalogue)  # rates 10× the defaults
    start = [layer.weight.norm(dim=1).max().item() for layer in model.hidden]
    _steps(model, ctx, 1000)
    for layer, norm0 in zip(model.hidden, start, strict=True):
        assert torch.isfinite(layer.weight).all() and torch.isfinite(layer.bias).all()
        assert layer.weight.norm(dim=1).max() < 5 * norm0
        assert layer.bias.abs().max() < 5
        if layer.mask is not None:
            assert torch.all(layer.weight[layer.mask == 0] == 0)
    for trace in ctx.stash[hebbian.STATE].traces:  # homeostasis held firing near 0.3
        assert torch.isfinite(trace.firing).all()
        assert 0.2 < trace.firing.mean() < 0.45 and trace.firing.min() > 0.1


def test_eval_mode_captures_nothing(catalogue):
    ctx, model, _ = prepare(tiny_config(features=("hebbian",)), catalogue)
    before = [p.detach().clone() for p in model.parameters()]
    model.eval()
    model(torch.rand(4, 1, 48, 48))
    with torch.no_grad():
        ctx.host.call("bionic_after_step", ctx=ctx, model=model, step=1, lr=1e-3)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_changes_training_and_rate_zero_restores_the_plain_model(catalogue):
    plain = train_run(tiny_config(epochs=1), catalogue)
    on = train_run(tiny_config(epochs=1, features=("hebbian",)), catalogue)
    off = train_run(tiny_config(epochs=1, features=("hebbian",),
                                params={"hebbian": {"rate": 0.0, "homeostasis": "none"}}),
                    catalogue)
    assert on.history[0]["train_loss"] != plain.history[0]["train_loss"]
    assert off.history[0]["train_loss"] == plain.history[0]["train_loss"]
    assert all(torch.equal(off.model_state[k], v) for k, v in plain.model_state.items())


def test_bad_parameters_fail_before_training(catalogue):
    with pytest.raises(BionicError, match="params.hebbian.target"):
        prepare(tiny_config(features=("hebbian",), params={"hebbian": {"target": 1.5}}),
                catalogue)


def _one_plastic_step(catalogue, follow_lr: bool, lr: float) -> list[torch.Tensor]:
    """Weights and biases after one forward pass and the after-step hook at learning rate
    ``lr`` (no optimizer step: only the local rule acts)."""
    config = tiny_config(features=("hebbian",), lr=1e-3,
                         params={"hebbian": {"rate": 1e-2, "follow_lr": follow_lr}})
    ctx, model, _ = prepare(config, catalogue)
    model.train()
    model(torch.rand(16, 1, 48, 48, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        ctx.host.call("bionic_after_step", ctx=ctx, model=model, step=1, lr=lr)
    return [p.detach().clone() for p in model.parameters()]


def test_follow_lr_scales_plasticity_with_the_learning_rate(catalogue):
    """follow_lr: at the initial learning rate the step is the constant-rate one; as the
    schedule brings the rate to zero, plasticity stops (weights and thresholds stay)."""
    untouched = _one_plastic_step(catalogue, False, 1e-3)
    config = tiny_config(features=("hebbian",), lr=1e-3)
    _, fresh, _ = prepare(config, catalogue)
    start = [p.detach().clone() for p in fresh.parameters()]
    constant = _one_plastic_step(catalogue, False, 1e-4)  # the rate ignores lr
    assert all(torch.equal(a, b) for a, b in zip(constant, untouched, strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(constant, start, strict=True))
    following = _one_plastic_step(catalogue, True, 1e-3)
    assert all(torch.equal(a, b) for a, b in zip(following, constant, strict=True))
    stopped = _one_plastic_step(catalogue, True, 0.0)
    assert all(torch.equal(a, b) for a, b in zip(stopped, start, strict=True))
    half = _one_plastic_step(catalogue, True, 5e-4)
    moved = [(h - s).norm() / (c - s).norm() for h, c, s in zip(half, constant, start,
                                                                 strict=True)
             if not torch.equal(c, s)]
    assert all(0.45 < float(r) < 0.55 for r in moved)  # half the rate, about half the move
