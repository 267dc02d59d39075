"""The functional features other than augmentation and hebbian (their own files): each changes
the computation, turning it off restores the plain model, and they reach what they configure."""

from __future__ import annotations

import math

import pytest
import torch
from bionic_plugins.conv_frontend import ChannelAttention, SpatialAttention
from bionic_plugins.synaptic_noise import ActivityNoise
from torch import nn

from bionic_core.config import resolve_features
from bionic_core.contract.errors import BionicError
from bionic_core.contract.features import Feature
from bionic_core.contract.hookspecs import hookimpl
from bionic_core.experiments import ExperimentFile
from bionic_core.network.model import MaskedHiddenLayer
from bionic_core.training.loop import prepare, train_run

from .conftest import REPO, MaskPlugin, tiny_config

MINE = ("conv_frontend", "layer_norm", "augmentation", "label_smoothing", "lr_scheduler",
        "weight_decay", "hebbian", "synaptic_noise")
PAPER_TABLE = ("adjacency_mask", "intra_layer", "lateral_inhibition", "graded_inhibition",
               "augmentation", "conv_frontend", "layer_norm", "label_smoothing", "lr_scheduler",
               "hebbian", "synaptic_noise", "weight_decay")




def _logits(catalogue, features, *, train: bool, params=None, seed: int = 0):
    _, model, _ = prepare(tiny_config(features=features, params=params or {}), catalogue)
    model.train(train)
    torch.manual_seed(seed)
    x = torch.rand(8, 1, 48, 48, generator=torch.Generator().manual_seed(1))
    return model(x)


# ------------------------------------------------------------------ metadata
def test_every_feature_declares_typed_parameters_with_a_search_space(catalogue):
    for name in MINE:
        feature = catalogue[name]
        assert feature.group == "functional" and feature.help
        for p in feature.params:
            assert p.coerce(p.default, name) == p.default
            assert p.choices is not None or (p.low is not None and p.high is not None), p.name
            if p.choices is None:
                assert p.low <= p.default <= p.high, (name, p.name)


# ------------------------------------------------------------------ synaptic noise
@pytest.mark.parametrize("target", ["activations", "weights"])
def test_noise_only_in_training_and_off_restores_the_plain_model(catalogue, target):
    params = {"synaptic_noise": {"target": target, "sigma": 0.2}}
    plain = _logits(catalogue, (), train=True)
    a = _logits(catalogue, ("synaptic_noise",), train=True, params=params, seed=1)
    assert not torch.allclose(a, plain)
    # drawn from the run's own stream: the global generator's state changes nothing ...
    b = _logits(catalogue, ("synaptic_noise",), train=True, params=params, seed=2)
    assert torch.equal(a, b)
    # ... and every training forward pass draws afresh
    _, model, _ = prepare(tiny_config(features=("synaptic_noise",), params=params), catalogue)
    x = torch.rand(8, 1, 48, 48, generator=torch.Generator().manual_seed(1))
    model.train()
    first, second = model(x), model(x)
    assert torch.equal(first, a) and not torch.allclose(first, second)
    evals = [_logits(catalogue, ("synaptic_noise",), train=False, params=params, seed=s)
             for s in (1, 2)]
    assert torch.equal(evals[0], evals[1])  # absent in eval mode
    assert torch.allclose(evals[0], _logits(catalogue, (), train=False), atol=1e-6)


def test_activity_noise_has_the_requested_spread_and_sits_after_layer_norm(catalogue):
    noise = ActivityNoise(0.3).train()
    h = torch.zeros(20000, 4)
    assert noise(h).std().item() == pytest.approx(0.3, rel=0.05)
    _, model, _ = prepare(tiny_config(features=("synaptic_noise", "layer_norm")), catalogue)
    post = list(model.hidden[0].post)
    assert isinstance(post[0], nn.LayerNorm) and isinstance(post[1], ActivityNoise)




def test_weight_noise_and_weight_decay_keep_masked_weights_zero(catalogue, register_plugin):
    register_plugin(MaskPlugin())
    config = tiny_config(features=("synaptic_noise", "weight_decay", "test_mask"),
                         params={"synaptic_noise": {"target": "weights", "sigma": 0.5},
                                 "weight_decay": {"decay": 0.5}})
    result = train_run(config.replace(epochs=1), catalogue)
    assert result.status == "finished"
    ctx, model, _ = prepare(config, catalogue)
    masked = model.hidden[1]
    assert masked.mask is not None
    model.train()
    noisy = masked.weight  # the parametrized weight: W ⊙ (1 + σξ)
    assert torch.all(noisy[masked.mask == 0] == 0)
    assert not torch.equal(noisy, masked.weight)  # a fresh draw per access in training
    state = result.model_state
    key = next(k for k in state if k.startswith("hidden.1.") and k.endswith("original"))
    assert torch.all(state[key][masked.mask == 0] == 0)


# ------------------------------------------------------------------ label smoothing
def test_label_smoothing_reaches_the_criterion(catalogue):
    ctx, _, _ = prepare(tiny_config(features=("label_smoothing",),
                                    params={"label_smoothing": {"epsilon": 0.2}}), catalogue)
    criterion = ctx.host.single("bionic_criterion", ctx=ctx)
    logits, target = torch.tensor([[2.0, 0, 0, 0, 0, 0, 0]]), torch.tensor([0])
    logp = torch.log_softmax(logits, 1)[0]
    expected = -(0.8 + 0.2 / 7) * logp[0] - (0.2 / 7) * logp[1:].sum()
    assert criterion(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)
    plain, _, _ = prepare(tiny_config(), catalogue)
    assert plain.host.single("bionic_criterion", ctx=plain) is None  # core cross-entropy
    on = train_run(tiny_config(epochs=1, features=("label_smoothing",)), catalogue)
    off = train_run(tiny_config(epochs=1), catalogue)
    assert on.history[0]["train_loss"] != off.history[0]["train_loss"]


# ------------------------------------------------------------------ scheduler
def test_plateau_scheduler_cuts_the_optimizer_rate_when_the_metric_stalls(catalogue):
    ctx, model, _ = prepare(tiny_config(features=("lr_scheduler",),
                                        params={"lr_scheduler": {"patience": 2}}), catalogue)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = ctx.host.single("bionic_scheduler", ctx=ctx, optimizer=optimizer)
    assert isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    for metric in (0.5, 0.6, 0.6, 0.6):  # higher is better: mode "max"
        scheduler.step(metric)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    scheduler.step(0.6)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)


def test_cosine_schedule_reaches_the_optimizer_in_training(catalogue):
    config = tiny_config(epochs=4, features=("lr_scheduler",), lr=1e-3,
                         params={"lr_scheduler": {"kind": "cosine", "min_lr": 0.0}})
    result = train_run(config, catalogue)
    lrs = [row["lr"] for row in result.history]
    expected = [0.5e-3 * (1 + math.cos(math.pi * e / 4)) for e in (1, 2, 3, 4)]
    assert lrs == pytest.approx(expected, abs=1e-9)
    plain = train_run(tiny_config(epochs=2), catalogue)
    assert {row["lr"] for row in plain.history} == {1e-3}


# ------------------------------------------------------------------ weight decay
def test_weight_decay_makes_adamw_decaying_only_matrices(catalogue):
    ctx, model, _ = prepare(tiny_config(features=("weight_decay",), lr=0.01,
                                        params={"weight_decay": {"decay": 0.1}}), catalogue)
    params = list(model.parameters())
    optimizer = ctx.host.single("bionic_optimizer", ctx=ctx, parameters=params)
    assert isinstance(optimizer, torch.optim.AdamW)
    decays = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    assert all(g["lr"] == 0.01 for g in optimizer.param_groups)
    assert all(decays[id(p)] == (0.1 if p.ndim >= 2 else 0.0) for p in params)
    weight, bias = model.hidden[0].weight, model.hidden[0].bias
    w0, b0 = weight.detach().clone(), bias.detach().clone()
    for p in params:
        p.grad = torch.zeros_like(p)  # no gradient: only the decoupled decay acts
    optimizer.step()
    assert torch.allclose(weight, w0 * (1 - 0.01 * 0.1))
    assert torch.equal(bias, b0)
    plain, _, _ = prepare(tiny_config(), catalogue)
    assert plain.host.single("bionic_optimizer", ctx=plain, parameters=params) is None


# ------------------------------------------------------------------ conv front end
def test_conv_frontend_shape_attention_and_stage_insertion(catalogue, register_plugin):
    class Stage:
        @staticmethod
        @hookimpl
        def bionic_feature():
            return Feature(name="test_stage", group="structural", help="marks after_conv1",
                           requires=("conv_frontend",))

        @staticmethod
        @hookimpl
        def bionic_frontend_stage(stage, channels):
            return nn.Identity() if stage == "after_conv1" and channels == 8 else None

    register_plugin(Stage())
    _, model, _ = prepare(tiny_config(features=("conv_frontend", "test_stage")), catalogue)
    front = list(model.frontend)
    assert [type(m).__name__ for m in front] == [
        "Conv2d", "ReLU", "Identity", "MaxPool2d", "Conv2d", "ReLU", "ChannelAttention",
        "SpatialAttention", "MaxPool2d", "Flatten"]
    assert model.hidden[0].weight.shape[1] == 16 * 12 * 12
    _, small, _ = prepare(tiny_config(features=("conv_frontend",), params={"conv_frontend": {
        "attention": False, "pool": 3, "pool_type": "avg", "kernel1": 5}}), catalogue)
    kinds = [type(m).__name__ for m in small.frontend]
    assert "ChannelAttention" not in kinds and kinds.count("AvgPool2d") == 2
    assert small.frontend[0].kernel_size == (5, 5)
    assert small.hidden[0].weight.shape[1] == 16 * 5 * 5
    _, plain, _ = prepare(tiny_config(), catalogue)
    assert isinstance(plain.frontend, nn.Flatten)  # off: the plain model flattens the image


def test_conv_frontend_further_blocks_widen_it_and_two_blocks_is_the_papers(catalogue):
    params = {"blocks": 3, "channels3": 24}
    _, paper, _ = prepare(tiny_config(features=("conv_frontend",)), catalogue)
    _, wide, _ = prepare(tiny_config(features=("conv_frontend",),
                                     params={"conv_frontend": params}), catalogue)
    kinds = [type(m).__name__ for m in wide.frontend]
    assert kinds == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Conv2d",
                     "ReLU", "ChannelAttention", "SpatialAttention", "MaxPool2d", "Flatten"]
    assert wide.frontend[6].in_channels == 16 and wide.frontend[6].out_channels == 24
    assert wide.frontend[8].mlp[0].in_features == 24  # the attention gates the last block
    assert wide.hidden[0].weight.shape[1] == 24 * 6 * 6
    # blocks = 2 (the default) is the paper's front end: its parameters keep their names
    assert list(paper.frontend.state_dict()) == [
        "0.weight", "0.bias", "3.weight", "3.bias", "5.mlp.0.weight", "5.mlp.0.bias",
        "5.mlp.2.weight", "5.mlp.2.bias", "6.conv.weight", "6.conv.bias"]
    with pytest.raises(BionicError, match="params.conv_frontend: 4 blocks pooled by 3"):
        prepare(tiny_config(features=("conv_frontend",),
                            params={"conv_frontend": {"blocks": 4, "pool": 3}}), catalogue)


def test_cbam_gates_are_sigmoids_of_pooled_descriptors(catalogue):
    torch.manual_seed(0)
    x = torch.rand(2, 16, 6, 6)
    channel = ChannelAttention(16, 4)
    gate = torch.sigmoid(channel.mlp(x.mean(dim=(2, 3))) + channel.mlp(x.amax(dim=(2, 3))))
    assert torch.allclose(channel(x), x * gate[:, :, None, None])
    spatial = SpatialAttention(7)
    maps = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
    assert torch.allclose(spatial(x), x * torch.sigmoid(spatial.conv(maps)))
    on, off = (_logits(catalogue, ("conv_frontend",), train=False,
                       params={"conv_frontend": {"attention": a}}) for a in (True, False))
    assert on.shape == off.shape and not torch.allclose(on, off)


# ------------------------------------------------------------------ layer norm
def test_layer_norm_normalises_each_hidden_layer_and_off_is_plain(catalogue):
    _, model, _ = prepare(tiny_config(features=("layer_norm",),
                                      params={"layer_norm": {"affine": False}}), catalogue)
    model.eval()
    h = model.hidden[0](torch.rand(4, 48 * 48))
    assert torch.allclose(h.mean(1), torch.zeros(4), atol=1e-5)
    assert torch.allclose(h.var(1, unbiased=False), torch.ones(4), atol=1e-3)
    _, plain, _ = prepare(tiny_config(), catalogue)
    assert all(len(layer.post) == 0 for layer in plain.hidden)
    assert isinstance(plain.hidden[0], MaskedHiddenLayer)


# ------------------------------------------------------------------ experiments
def test_experiments_paper_baseline_quickstart(catalogue):
    file = ExperimentFile.load(REPO / "experiments.toml")
    paper = file.config("paper")
    assert set(PAPER_TABLE) | {"laminar"} == set(paper.features)
    assert paper.batch_size == 32 and len(paper.seeds) == 3
    # the confirmed recipe (RESULTS.md): 100 epochs of cosine schedule, no early stopping
    assert (paper.epochs, paper.patience, paper.params["lr_scheduler"]["kind"]) == (
        100, 0, "cosine")
    baseline = file.config("baseline")
    assert (baseline.epochs, baseline.patience, baseline.params["lr_scheduler"]) == (
        paper.epochs, paper.patience, paper.params["lr_scheduler"])  # only the biology differs
    assert not set(baseline.features) & {"adjacency_mask", "intra_layer", "lateral_inhibition",
                                         "graded_inhibition", "hebbian", "synaptic_noise",
                                         "laminar"}
    assert "conv_frontend" in baseline.features
    quick = file.config("quickstart")
    assert quick.dataset == "demo" and len(quick.features) >= 3
    for name in ("baseline", "quickstart"):
        resolve_features(file.config(name), catalogue, name)
    if set(paper.features) <= set(catalogue.features()):
        resolve_features(paper, catalogue, "paper")
