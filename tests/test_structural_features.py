"""The five structural feature plugins: laminar, adjacency_mask, intra_layer, graded_inhibition,
lateral_inhibition — each changes the computation as documented, and off gives the plain one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from bionic_core.config import RunConfig, apply_overrides, resolve_features
from bionic_core.connectome import build_connectome
from bionic_core.contract.errors import BionicError
from bionic_core.experiments import ExperimentFile
from bionic_core.network.model import count_parameters
from bionic_core.training.loop import prepare, train_run

from .conftest import tiny_config

STRUCTURAL = ("laminar", "adjacency_mask", "intra_layer", "graded_inhibition",
              "lateral_inhibition")
CENSUS_SIZES = [266, 349, 185, 360]
X = torch.rand(4, 1, 48, 48, generator=torch.Generator().manual_seed(0))


def build(catalogue, **changes):
    """(ctx, model, plan) of a tiny config, in eval mode."""
    ctx, model, plan = prepare(tiny_config(**changes), catalogue)
    return ctx, model.eval(), plan


def transfer(source, target) -> None:
    """Copy every tensor the two models share (the plain model's are a subset)."""
    state = source.state_dict()
    target.load_state_dict({k: state.get(k, v) for k, v in target.state_dict().items()})


# ------------------------------------------------------------------ a tiny hand-made column
def write_tiny_column(folder: Path) -> dict:
    """L4 units 1, 2, 3 (4P); L2/3 units 4, 5 (23P); inhibitory 10 (BC, L4), 11 (MC, L2/3).

    Inhibitory connections onto units: 1 <- 10, 11; 2 <- 10; 4 <- 10, 11; none onto 3 and 5,
    so counts are [2, 1, 0 | 2, 0] and the normalised input g = [1, .5, 0 | 1, 0].
    """
    cells = pd.DataFrame({"root_id": [1, 2, 3, 4, 5, 10, 11],
                          "layer": ["L4", "L4", "L4", "L2/3", "L2/3", "L4", "L2/3"],
                          "cell_type": ["4P", "4P", "4P", "23P", "23P", "BC", "MC"],
                          "ei": ["E", "E", "E", "E", "E", "I", "I"]})
    edges = pd.DataFrame(
        [(1, 2, 1), (2, 1, 3), (3, 1, 1),  # within L4
         (1, 4, 2), (2, 4, 1), (3, 5, 1),  # L4 -> L2/3
         (4, 5, 1),  # within L2/3
         (10, 1, 1), (10, 2, 2), (11, 1, 1), (11, 4, 1), (10, 4, 1)],  # inhibitory
        columns=["pre_root_id", "post_root_id", "n_synapses"])
    cells.to_csv(folder / "cells.csv", index=False)
    edges.to_csv(folder / "edges.csv", index=False)
    return {"cells": str(folder / "cells.csv"), "edges": str(folder / "edges.csv"),
            "grouping": {"L4": ["4P"], "L2/3": ["23P"]}}


TINY_FF = np.array([[1, 1, 0], [0, 0, 1]], dtype=np.float32)  # [post L2/3, pre L4]
TINY_INTRA = [np.array([[0, 1, 1], [1, 0, 0], [0, 0, 0]], dtype=np.float32),
              np.array([[0, 0], [1, 0]], dtype=np.float32)]
TINY_G = [np.array([1.0, 0.5, 0.0]), np.array([1.0, 0.0])]


@pytest.fixture
def tiny_column(tmp_path) -> dict:
    return write_tiny_column(tmp_path)


# ------------------------------------------------------------------ metadata
def test_the_five_structural_features_are_listed_with_search_space(catalogue):
    features = catalogue.features()
    for name in STRUCTURAL:
        feature = features[name]
        assert feature.group == "structural" and feature.help
        # every one contributes at least one tunable parameter
        assert any(p.choices or (p.low is not None and p.high is not None)
                   for p in feature.params), name
    assert features["lateral_inhibition"].requires == ("conv_frontend",)
    with pytest.raises(BionicError, match="lateral_inhibition.*conv_frontend"):
        catalogue.validate(["lateral_inhibition"], "features")


# ------------------------------------------------------------------ laminar
def test_laminar_takes_sizes_and_units_from_the_census(catalogue):
    _, model, plan = build(catalogue, features=("laminar",))
    assert plan.sizes == CENSUS_SIZES and [h.weight.shape[0] for h in model.hidden] == CENSUS_SIZES
    assert [layer.name for layer in plan.layers] == ["L4", "L2/3", "L5", "L6"]
    assert set(plan.layers[0].cell_types) == {"4P"} and set(plan.layers[2].ei) == {"E"}
    assert set(plan.layers[3].cell_types) == {"6P-IT", "6P-CT", "6P-U"}
    assert model.readout.in_features == 360
    _, plain, plain_plan = build(catalogue, features=())
    assert plain_plan.sizes == [32, 32] and [h.weight.shape[0] for h in plain.hidden] == [32, 32]


def test_laminar_scale_and_grouping(catalogue):
    _, _, half = build(catalogue, features=("laminar",), params={"laminar": {"scale": 0.5}})
    assert half.sizes == [round(0.5 * n) for n in CENSUS_SIZES]
    assert half.layers[0].cell_types is None  # units no longer stand for cells
    _, _, swapped = build(catalogue, features=("laminar",),
                          connectome={"grouping": {"L2/3": ["23P"], "L4": ["4P"]}})
    assert swapped.sizes == [349, 266]


# ------------------------------------------------------------------ adjacency_mask
def test_adjacency_mask_uses_the_column_masks(catalogue):
    ctx, model, _ = build(catalogue, features=("laminar", "adjacency_mask"))
    column = build_connectome()
    assert model.hidden[0].mask is None  # front end -> first layer stays dense
    for k in (1, 2, 3):
        assert np.array_equal(model.hidden[k].mask.numpy(), column.feedforward_masks[k - 1])
        w = model.hidden[k].weight.detach().numpy()
        assert np.all(w[column.feedforward_masks[k - 1] == 0] == 0)
    record = ctx.provenance["adjacency_mask"]
    assert record["densities"] == column.provenance["densities"]
    assert len(ctx.provenance["connectome"]["table"]["sha256"]) == 64


def test_adjacency_mask_changes_the_forward_pass_and_off_is_dense(catalogue):
    _, masked, _ = build(catalogue, features=("laminar", "adjacency_mask"))
    _, dense, _ = build(catalogue, features=("laminar",))
    x = torch.ones(1, 266)
    for model in (masked, dense):
        with torch.no_grad():
            model.hidden[1].weight.fill_(1.0)
            model.hidden[1].bias.zero_()
    # all-ones weights: each unit sums its allowed inputs — its mask row, or all 266 when dense
    expected = masked.hidden[1].mask.sum(dim=1)
    assert torch.equal(masked.hidden[1](x), expected.unsqueeze(0))
    assert torch.equal(dense.hidden[1](x), torch.full((1, 349), 266.0))
    assert not torch.equal(expected, torch.full((349,), 266.0))


def test_laminar_off_keeps_the_units_and_connections_not_the_layers(catalogue):
    """`laminar` off in `paper`: the same 1,160 units in uniform layers, each block with the
    column's connection count, no census sizes or types."""
    ctx, model, plan = build(catalogue, features=("adjacency_mask",),
                             hidden_sizes=(290, 290, 290, 290))
    column = build_connectome()
    assert sum(plan.sizes) == sum(CENSUS_SIZES) and plan.layers[0].cell_types is None
    assert model.hidden[0].mask is None
    for k in (1, 2, 3):
        assert model.hidden[k].mask.sum() == column.feedforward_masks[k - 1].sum()
    for k in range(4):
        assert model.hidden[k].intra_mask is None  # no intra_layer: the masks are unused
    record = ctx.provenance["adjacency_mask"]
    assert "are not the census cells" in record["masks"]
    assert record["connections"]["feedforward"] == sum(m.sum() for m in column.feedforward_masks)


CONTROLS = ("type_shuffled", "layer_uniform", "uniform", "degree_preserving")
FEATURES = ("laminar", "adjacency_mask", "intra_layer")


@pytest.mark.parametrize("wiring", CONTROLS)
def test_a_control_starts_from_the_column_runs_initial_weights(catalogue, wiring):
    """The same dense initial draw, masked differently: equal wherever both masks allow a
    synapse, exactly when the block keeps its connection count (all but uniform), else up to
    the 1/sqrt(density) rescale of the layer."""
    ctx, control, _ = build(catalogue, features=FEATURES,
                            params={"adjacency_mask": {"wiring": wiring}})
    _, column, _ = build(catalogue, features=FEATURES)
    assert ctx.provenance["adjacency_mask"]["null_seed"] == 0
    assert torch.equal(control.hidden[0].weight, column.hidden[0].weight)  # dense, unmasked
    assert torch.equal(control.readout.weight, column.readout.weight)
    for k in (1, 2, 3):
        a, b = control.hidden[k], column.hidden[k]
        assert not torch.equal(a.mask, b.mask)
        both = (a.mask * b.mask) == 1
        assert both.sum() > 0
        rescale = float(torch.sqrt(a.mask.mean() / b.mask.mean()))
        if wiring != "uniform":
            assert rescale == 1.0 and torch.equal(a.weight[both], b.weight[both])
        assert torch.allclose(a.weight[both] * rescale, b.weight[both], rtol=1e-5, atol=0)
        intra = (a.intra_mask * b.intra_mask) == 1
        assert torch.equal(a.intra_weight[intra], b.intra_weight[intra])
    assert not torch.allclose(control(X), column(X))  # the wiring alone differs


def test_dense_matched_has_the_masked_models_free_weights(catalogue):
    ctx, dense, plan = build(catalogue, features=FEATURES,
                             params={"adjacency_mask": {"wiring": "dense_matched"}})
    _, column, _ = build(catalogue, features=FEATURES)

    def hidden_weights(model) -> int:
        total = 0
        for layer in model.hidden:
            total += int(layer.mask.sum()) if layer.mask is not None else layer.weight.numel()
            total += int(layer.intra_mask.sum())
        return total

    assert all(layer.mask is None for layer in dense.hidden)
    widths = ctx.provenance["adjacency_mask"]["widths"]
    assert plan.sizes == widths and all(w < n for w, n in zip(widths, CENSUS_SIZES, strict=True))
    assert abs(hidden_weights(dense) - hidden_weights(column)) < 0.01 * hidden_weights(column)
    assert count_parameters(dense) < count_parameters(column) * 1.01


def test_edge_table_gives_cell_to_cell_masks(catalogue, tiny_column):
    ctx, model, plan = build(catalogue, features=("laminar", "adjacency_mask", "intra_layer"),
                             connectome=tiny_column)
    assert plan.sizes == [3, 2]
    assert np.array_equal(model.hidden[1].mask.numpy(), TINY_FF)
    for k in (0, 1):
        assert np.array_equal(model.hidden[k].intra_mask.numpy(), TINY_INTRA[k])
    assert ctx.provenance["connectome"]["mode"] == "edges"
    assert "synapses onto cell i" in ctx.provenance["adjacency_mask"]["masks"]


def test_masked_weights_stay_zero_after_training(catalogue):
    config = tiny_config(features=("laminar", "adjacency_mask", "intra_layer"), epochs=2)
    _, initial, _ = prepare(config, catalogue)
    result = train_run(config, catalogue)
    assert result.status == "finished" and result.epochs_run == 2
    state = result.model_state
    changed = 0
    for k in range(4):
        for weight, mask in ((f"hidden.{k}.weight", f"hidden.{k}.mask"),
                             (f"hidden.{k}.intra_weight", f"hidden.{k}.intra_mask")):
            if mask not in state:
                continue
            assert torch.count_nonzero(state[weight][state[mask] == 0]) == 0
            assert (state[mask] == 0).float().mean() > 0.5  # the mask removes most synapses
            changed += int(not torch.equal(state[weight], initial.state_dict()[weight]))
    assert changed >= 6  # training did move the weights
    provenance = result.plan["provenance"]
    assert set(provenance) >= {"connectome", "laminar", "adjacency_mask", "intra_layer"}
    json.dumps(result.plan)  # logged with the run as JSON


# ------------------------------------------------------------------ intra_layer
def test_intra_layer_adds_the_masked_lateral_step(catalogue, tiny_column):
    _, model, _ = build(catalogue, features=("laminar", "adjacency_mask", "intra_layer"),
                        connectome=tiny_column, params={"intra_layer": {"init_std": 0.5}})
    _, plain, _ = build(catalogue, features=("laminar", "adjacency_mask"),
                        connectome=tiny_column)
    transfer(model, plain)
    layer = model.hidden[1]
    x = torch.rand(5, 3)
    z = F.linear(x, layer.weight * layer.mask, layer.bias)
    lateral = F.linear(torch.relu(z), layer.intra_weight * torch.from_numpy(TINY_INTRA[1]))
    assert torch.allclose(layer(x), torch.relu(z + lateral))
    assert not torch.allclose(layer(x), plain.hidden[1](x))
    assert torch.equal(plain.hidden[1](x), torch.relu(z))
    assert torch.count_nonzero(layer.intra_weight[torch.from_numpy(TINY_INTRA[1]) == 0]) == 0


def test_intra_layer_off_restores_the_plain_model(catalogue):
    _, on, _ = build(catalogue, features=("intra_layer",),
                     params={"intra_layer": {"init_std": 0.2}})
    _, off, _ = build(catalogue, features=())
    transfer(on, off)
    assert not torch.allclose(on(X), off(X))
    with torch.no_grad():
        for layer in on.hidden:
            assert layer.intra_mask.diagonal().sum() == 0  # dense, no self-connections
            assert abs(float(layer.intra_weight[layer.intra_mask == 1].std()) - 0.2) < 0.02
            layer.intra_weight.zero_()
    assert torch.equal(on(X), off(X))


# ------------------------------------------------------------------ graded_inhibition
@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_graded_inhibition_math_on_a_tiny_column(catalogue, tiny_column, alpha):
    ctx, model, _ = build(catalogue, features=("laminar", "graded_inhibition"),
                          connectome=tiny_column, params={"graded_inhibition": {"alpha": alpha}})
    _, plain, _ = build(catalogue, features=("laminar",), connectome=tiny_column)
    transfer(model, plain)
    x = X.flatten(1)
    for k, layer in enumerate(model.hidden):
        gain = torch.tensor(1.0 - alpha * TINY_G[k], dtype=torch.float32)
        assert torch.allclose(layer.post[0].gain, gain)
        assert torch.allclose(layer(x), torch.relu(F.linear(x, layer.weight, layer.bias)) * gain)
        x = layer(x)
    assert not torch.allclose(model(X), plain(X))
    assert ctx.provenance["graded_inhibition"]["layers"]["L4"]["min_gain"] == 1 - alpha


def test_graded_inhibition_off_or_zero_is_the_plain_model(catalogue):
    _, zero, _ = build(catalogue, features=("graded_inhibition",),
                       params={"graded_inhibition": {"alpha": 0.0}})
    _, on, _ = build(catalogue, features=("graded_inhibition",))
    _, off, _ = build(catalogue, features=())
    assert torch.equal(zero(X), off(X))  # no parameters, no random draws: same weights
    assert not torch.allclose(on(X), off(X))
    # uniform layers: values are drawn from the census layer at the same depth
    census = build_connectome().inhibitory_input_by_layer()
    for k, layer in enumerate(on.hidden):
        g = (1.0 - layer.post[0].gain) / 0.5
        assert set(np.round(g.numpy(), 5)) <= set(np.round(census[k], 5))
    with pytest.raises(BionicError, match="alpha: 1.5 is outside"):
        build(catalogue, features=("graded_inhibition",),
              params={"graded_inhibition": {"alpha": 1.5}})


def test_graded_inhibition_differs_by_cell_type_within_a_layer(catalogue):
    _, model, plan = build(catalogue, features=("laminar", "graded_inhibition"))
    gain = model.hidden[2].post[0].gain.numpy()  # L5
    types = np.array(plan.layers[2].cell_types)
    mean = {t: float(gain[types == t].mean()) for t in ("5P-IT", "5P-PT", "5P-NP")}
    assert mean["5P-PT"] < mean["5P-IT"] < mean["5P-NP"]  # PT cells get the most inhibition


# ------------------------------------------------------------------ lateral_inhibition
def test_lateral_inhibition_sits_between_the_convolutions(catalogue):
    _, on, _ = build(catalogue, features=("conv_frontend", "lateral_inhibition"))
    names = [type(m).__name__ for m in on.frontend]
    li = names.index("LateralInhibition")
    assert names[:li] == ["Conv2d", "ReLU"] and "Conv2d" in names[li + 1:]


@pytest.mark.parametrize("mode", ["divisive", "subtractive"])
def test_lateral_inhibition_math(catalogue, mode):
    _, model, _ = build(catalogue, features=("conv_frontend", "lateral_inhibition"),
                        params={"lateral_inhibition": {"mode": mode, "strength": 0.5, "size": 3}})
    li = next(m for m in model.frontend if type(m).__name__ == "LateralInhibition")
    uniform = torch.full((1, 2, 5, 5), 2.0)
    expected = 2.0 / (1 + 0.5 * 2.0) if mode == "divisive" else 2.0 - 0.5 * 2.0
    # corners too: positions beyond the border are absent, not zeros
    assert torch.allclose(li(uniform), torch.full_like(uniform, expected))
    spot = torch.zeros(1, 1, 5, 5)
    spot[0, 0, 2, 2] = 8.0
    out = li(spot)
    assert out[0, 0, 2, 2] == 8.0  # its surround is dark: the spot is untouched
    assert torch.count_nonzero(out) == 1  # dark neighbours stay dark
    edge = torch.zeros(1, 1, 5, 5)
    edge[..., 2:] = 1.0
    out = li(edge)
    assert out[0, 0, 2, 2] > out[0, 0, 2, 4]  # a lit unit next to darkness is inhibited less


def _composed_divisive(x, size, strength):
    """The divisive step as plain autograd sees it: the reference for the fused backward."""
    ones = torch.ones((1, 1, *x.shape[-2:]), dtype=x.dtype)
    count = torch.nn.functional.avg_pool2d(ones, size, stride=1, padding=size // 2,
                                           count_include_pad=True) * size * size
    kernel = torch.ones((x.shape[1], 1, size, size), dtype=x.dtype)
    window = torch.nn.functional.conv2d(x, kernel, padding=size // 2, groups=x.shape[1])
    return x / (1.0 + (strength * (window - x) / (count - 1)).clamp_min(0.0))


@pytest.mark.parametrize("channels_last", [False, True])
def test_lateral_inhibition_fused_backward_matches_autograd(channels_last):
    from bionic_plugins.lateral_inhibition import LateralInhibition

    torch.manual_seed(0)
    # ReLU-like activity with dark patches: the clamp's kink (zero surround) is exercised
    x = torch.relu(torch.randn(3, 4, 9, 9, dtype=torch.float64))
    x[:, :, 2:6, 2:6] = 0.0
    x[0, 1, 4, 4] = 2.0  # a lit unit in a dark surround
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    module = LateralInhibition(5, 0.7, "divisive")
    g = torch.randn(3, 4, 9, 9, dtype=torch.float64)
    fused_in, plain_in = x.clone().requires_grad_(), x.clone().requires_grad_()
    fused, plain = module(fused_in), _composed_divisive(plain_in, 5, 0.7)
    (fused * g).sum().backward()
    (plain * g).sum().backward()
    assert torch.allclose(fused, plain, atol=1e-12)
    assert torch.allclose(fused_in.grad, plain_in.grad, atol=1e-12)
    signed = torch.randn(2, 3, 7, 7, dtype=torch.float64, requires_grad=True)  # also < 0
    assert torch.autograd.gradcheck(module, (signed,))


def test_lateral_inhibition_under_vmap_matches_each_model_alone():
    from bionic_plugins.lateral_inhibition import LateralInhibition
    from torch.func import vmap

    torch.manual_seed(1)
    module = LateralInhibition(3, 1.0, "divisive")
    stacked = torch.relu(torch.randn(2, 4, 3, 8, 8)).requires_grad_()
    out = vmap(module)(stacked)
    out.square().sum().backward()
    for i in range(2):
        alone = stacked.detach()[i].clone().requires_grad_()
        y = module(alone)
        y.square().sum().backward()
        assert torch.allclose(out[i], y, atol=1e-6)
        assert torch.allclose(stacked.grad[i], alone.grad, atol=1e-5)


def test_lateral_inhibition_off_or_zero_is_the_plain_front_end(catalogue):
    _, zero, _ = build(catalogue, features=("conv_frontend", "lateral_inhibition"),
                       params={"lateral_inhibition": {"strength": 0.0}})
    _, on, _ = build(catalogue, features=("conv_frontend", "lateral_inhibition"))
    _, off, _ = build(catalogue, features=("conv_frontend",))
    assert torch.equal(zero(X), off(X))
    assert not torch.allclose(on(X), off(X))


# ------------------------------------------------------------------ the connectome config
def test_connectome_config_overrides_paths_and_errors(tmp_path, catalogue, tiny_column):
    base = RunConfig(features=("laminar",))
    config = apply_overrides(base, sets=[f"connectome.edges={tiny_column['edges']}",
                                         "connectome.seed=3", "connectome.distance=false",
                                         "connectome.null_seed=2"])
    assert config.connectome == {"edges": tiny_column["edges"], "seed": 3, "distance": False,
                                 "null_seed": 2}
    assert config.key() != base.key()
    resolve_features(config, catalogue, "here")
    for raw, message in (({"edge": "x.csv"}, "here: connectome: unknown key 'edge'"),
                         ({"seed": "1"}, "here: connectome.seed: expected int"),
                         ({"cells": "nowhere.csv"}, "connectome.cells: nowhere.csv: file not"),
                         ({"min_synapses": 0}, "min_synapses: 0 must be >= 1"),
                         ({"distance": 1}, "connectome.distance: expected bool"),
                         ({"null_seed": True}, "connectome.null_seed: expected int")):
        with pytest.raises(BionicError, match=message):
            resolve_features(base.replace(connectome=raw), catalogue, "here")
    path = tmp_path / "experiments.toml"
    path.write_text('[experiments.a]\nfeatures = ["laminar"]\n[experiments.a.connectome]\n'
                    'cells = "cells.csv"\ntable = "billeh2020"\n')
    loaded = ExperimentFile.load(path).config("a").connectome
    assert loaded == {"cells": tiny_column["cells"], "table": "billeh2020"}


def test_every_structural_feature_trains_together(catalogue):
    config = tiny_config(features=("conv_frontend", *STRUCTURAL), epochs=1,
                         params={"laminar": {"scale": 0.25}})
    result = train_run(config, catalogue)
    assert result.status == "finished" and np.isfinite(result.history[0]["train_loss"])
    assert result.plan["sizes"] == [round(0.25 * n) for n in CENSUS_SIZES]
