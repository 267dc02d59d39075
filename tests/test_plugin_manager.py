"""The hook contract and the plugin manager: registration, ordering, third-party loading."""

from __future__ import annotations

import json
import logging
import types

import pytest
import torch
from bionic_cli.app import app
from torch import nn
from torch.nn.utils import parametrize
from typer.testing import CliRunner

from bionic_core import host as plugin_manager
from bionic_core.contract.errors import BionicError
from bionic_core.contract.features import Feature, Param
from bionic_core.contract.hookspecs import hookimpl
from bionic_core.training.loop import prepare

from .conftest import tiny_config


class Scale(nn.Module):
    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor


class AddConst(nn.Module):
    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = c

    def forward(self, x):
        return x + self.c


def make_plugin(name: str, module_factory, order: int = 100, **feature_kwargs):
    """A plugin object implementing bionic_feature and bionic_layer_activity."""

    class Plugin:
        @hookimpl
        def bionic_feature(self):
            return Feature(name=name, group="functional", help="test", order=order,
                           params=(Param("factor", float, 2.0, "scale"),), **feature_kwargs)

        @hookimpl
        def bionic_layer_activity(self, ctx, layer, index):
            return module_factory(ctx.params(name)["factor"])

    return Plugin()


def test_builtin_features_have_metadata(catalogue):
    features = catalogue.features()
    assert {"layer_norm", "conv_frontend"} <= set(features)
    for f in features.values():
        assert f.group in ("structural", "functional")
        assert f.source == "builtin"
        assert all(p.name and p.type in (int, float, bool, str) for p in f.params)


def test_registered_test_plugin_changes_forward_and_unregisters(catalogue, register_plugin):
    name = register_plugin(make_plugin("scale_test", Scale))
    assert name in catalogue
    config = tiny_config(features=(name,), params={name: {"factor": 0.0}})
    _, model, _ = prepare(config, catalogue)
    x = torch.rand(3, 1, 48, 48)
    # The readout sees zeros, so the logits equal the readout bias for every image.
    assert torch.allclose(model(x), model.readout.bias.expand(3, -1))
    _, plain, _ = prepare(config.replace(features=()), catalogue)
    assert not torch.allclose(plain(x), plain.readout.bias.expand(3, -1))


def test_same_phase_features_run_in_declared_order(catalogue, register_plugin):
    # Registered "add" first; "scale" declares the lower order, so it must run first:
    # (h * 0) + 1 = 1 everywhere. The other order would give (h + 1) * 0 = 0.
    register_plugin(make_plugin("add_test", lambda f: AddConst(1.0), order=50))
    register_plugin(make_plugin("scale_test", lambda f: Scale(0.0), order=10))
    config = tiny_config(features=("add_test", "scale_test"), hidden_sizes=(4,))
    _, model, _ = prepare(config, catalogue)
    h = model.hidden[0](torch.randn(2, 48 * 48))
    assert torch.equal(h, torch.ones(2, 4))


def test_feature_set_validation(catalogue, register_plugin):
    register_plugin(make_plugin("needs_conv", Scale, requires=("conv_frontend",)))
    register_plugin(make_plugin("hates_ln", Scale, conflicts=("layer_norm",)))
    with pytest.raises(BionicError, match="needs_conv requires conv_frontend"):
        catalogue.host(["needs_conv"])
    with pytest.raises(BionicError, match="conflicts"):
        catalogue.host(["hates_ln", "layer_norm"])
    with pytest.raises(BionicError, match="unknown feature 'nope'"):
        catalogue.host(["nope"])
    host = catalogue.host(["needs_conv", "conv_frontend"])
    # Features that are off are not registered, and blocked by name.
    assert host.pm.is_blocked("layer_norm")
    assert host.pm.get_plugin("needs_conv") is not None


class FakeEntryPoint:
    def __init__(self, name, loader, dist_name="thirdparty-feature", version="1.2.3"):
        self.name, self.value = name, f"{dist_name.replace('-', '_')}:{name}"
        self._loader = loader
        self.dist = types.SimpleNamespace(name=dist_name, version=version)

    def load(self):
        return self._loader()


def _fake_entry_points(monkeypatch, eps):
    monkeypatch.setattr(plugin_manager, "entry_points", lambda group: eps)


def _broken():
    raise ImportError("No module named 'missing_dependency'")


def test_broken_third_party_plugin_warns_and_others_load(monkeypatch, caplog):
    good = make_plugin("good_thirdparty", Scale)
    _fake_entry_points(monkeypatch, [FakeEntryPoint("broken", _broken),
                                     FakeEntryPoint("good", lambda: good)])
    monkeypatch.delenv(plugin_manager.DISABLE_ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger="bionic.plugins"):
        catalogue = plugin_manager.load_catalogue(strict=False)
    line = ("feature plugin 'broken' (thirdparty-feature 1.2.3) not loaded: "
            "ImportError: No module named 'missing_dependency'")
    assert caplog.messages == [line] and catalogue.problems == [line]
    assert "good_thirdparty" in catalogue
    assert catalogue["good_thirdparty"].source == "thirdparty-feature 1.2.3"
    assert "layer_norm" in catalogue


def test_strict_mode_and_disable_switch(monkeypatch):
    _fake_entry_points(monkeypatch, [FakeEntryPoint("broken", _broken)])
    with pytest.raises(BionicError, match="feature plugin 'broken' .* not loaded: ImportError"):
        plugin_manager.load_catalogue(strict=True, third_party=True)
    monkeypatch.setenv(plugin_manager.DISABLE_ENV, "1")
    catalogue = plugin_manager.load_catalogue()  # no warning, no third-party plugin
    assert "broken" not in catalogue and catalogue.problems == []
    assert catalogue.switched_off == ("BIONIC_DISABLE_PLUGINS=1", ["broken"])


def test_plugin_returning_wrong_type_is_rejected(catalogue):
    class Bad:
        @hookimpl
        def bionic_feature(self):
            return {"name": "bad"}

    with pytest.raises(TypeError, match="Feature"):
        catalogue.add(Bad())


def test_plugin_with_an_unknown_group_is_rejected(catalogue):
    class Odd:
        @hookimpl
        def bionic_feature(self):
            return Feature(name="odd", group="behavioural", help="test")

    with pytest.raises(TypeError, match="group 'behavioural' is not one of structural, functional"):
        catalogue.add(Odd())


# ============================================================================ what features touch


def test_every_builtin_declares_what_it_touches(catalogue):
    for name, feature in catalogue.features().items():
        assert feature.touches, f"{name} declares no touches"
        assert catalogue.entries[name].hooks, f"{name} implements no hook"


def test_plugins_list_shows_order_touches_and_hooks(in_tmp):
    listed = CliRunner().invoke(app, ["plugins", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    features = {f["name"]: f for f in json.loads(listed.stdout)}
    assert (features["graded_inhibition"]["order"], features["graded_inhibition"]["touches"]) \
        == (20, ["hidden activity"])
    assert features["intra_layer"]["hooks"] == ["bionic_layer_options", "bionic_model_built"]
    table = CliRunner().invoke(app, ["plugins", "list"])
    assert table.exit_code == 0, table.output
    row = next(line for line in table.stdout.splitlines() if "graded_inhibition" in line)
    assert "│ 20 " in row and "hidden activity" in row
    assert "order" in table.stdout and "touches" in table.stdout


# ============================================================================ the ordering trap


class NonNegative(nn.Module):
    """A parametrization without a right inverse: the effective weights are ``|W|``."""

    def forward(self, w):
        return w.abs()


class Doubled(nn.Module):
    """A parametrization with a right inverse: the effective weights are ``2 W``."""

    def forward(self, w):
        return 2 * w

    def right_inverse(self, w):
        return w / 2


def parametrizing_plugin(name: str, parametrization: type[nn.Module]):
    """A feature that registers ``parametrization`` on each hidden layer's ``intra_weight`` when
    the model is built, at the default order (as intra_layer, which re-initialises it there)."""

    class Plugin:
        @hookimpl
        def bionic_feature(self):
            return Feature(name=name, group="structural", help="test", requires=("intra_layer",),
                           touches=("hidden.intra_weight",))

        @hookimpl
        def bionic_model_built(self, model):
            for layer in model.hidden:
                parametrize.register_parametrization(layer, "intra_weight", parametrization())

    return Plugin()


@pytest.mark.parametrize("parametrization", [NonNegative, Doubled])
def test_intra_layer_initialises_through_an_earlier_parametrization(
        catalogue, register_plugin, parametrization):
    name = register_plugin(parametrizing_plugin("a_intra_constraint", parametrization))
    assert name < "intra_layer"  # the same order: the name breaks the tie, it runs first
    config = tiny_config(features=(name, "intra_layer"), hidden_sizes=(64,),
                         params={"intra_layer": {"init_std": 0.1}})
    _, model, _ = prepare(config, catalogue)
    layer = model.hidden[0]
    assert isinstance(layer.parametrizations.intra_weight[0], parametrization)  # kept
    stored = layer.parametrizations.intra_weight.original
    off_diagonal = layer.intra_mask.bool()
    # intra_layer's initialisation (std 0.1, not the core's 0.01) is what the layer holds:
    # in the stored weights, or for an invertible parametrization in the effective ones.
    drawn = layer.intra_weight if parametrization is Doubled else stored
    assert drawn[off_diagonal].std().item() == pytest.approx(0.1, rel=0.1)
    assert torch.count_nonzero(layer.intra_weight[~off_diagonal]) == 0
    if parametrization is NonNegative:
        assert layer.intra_weight.min().item() >= 0


def test_initialise_without_parametrization_writes_in_place(catalogue):
    _, model, _ = prepare(tiny_config(features=("intra_layer",), hidden_sizes=(8,)), catalogue)
    layer = model.hidden[0]
    before = layer.intra_weight
    layer.initialise("intra_weight", torch.ones(8, 8))
    assert layer.intra_weight is before and torch.equal(before, torch.ones(8, 8))
