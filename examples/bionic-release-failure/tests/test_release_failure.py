"""release_failure's own tests, through bionic_core.testing (runs in seconds on a CPU)."""

from __future__ import annotations

import bionic_release_failure as feature
import pytest
import torch

from bionic_core.api import BionicError
from bionic_core.testing import built_model, catalogue_with, tiny_config, train_run


@pytest.fixture(scope="module")
def catalogue():
    return catalogue_with(feature)


def config(p: float = 0.8, **changes):
    return tiny_config(features=(feature.NAME,), params={feature.NAME: {"p": p}}, **changes)


def release_modules(model):
    return [m for layer in model.hidden for m in layer.post
            if isinstance(m, feature.ReleaseFailure)]


def test_declares_its_parameter_search_range_and_what_it_touches(catalogue):
    described = catalogue[feature.NAME]
    assert described.source == "tests" and described.touches == ("hidden activity",)
    p = described.param("p")
    assert (p.default, p.low, p.high) == (0.8, 0.5, 1.0)


def test_every_hidden_layer_gets_one_release_module(catalogue):
    _, model = built_model(config(p=0.6), catalogue)
    modules = release_modules(model)
    assert len(modules) == len(model.hidden) == 2
    assert all(m.p == 0.6 for m in modules)


def test_training_releases_with_probability_p_scaled_by_one_over_p(catalogue):
    _, model = built_model(config(p=0.6), catalogue)
    module = release_modules(model)[0]
    h = torch.ones(400, 50)
    out = module(h)
    assert out.unique().tolist() == pytest.approx([0.0, 1 / 0.6])
    assert (out > 0).float().mean().item() == pytest.approx(0.6, abs=0.02)
    module.eval()
    assert torch.equal(module(h), h)


def test_draws_come_from_the_run_stream(catalogue):
    h = torch.ones(8, 32)
    first = release_modules(built_model(config(), catalogue)[1])[0](h)
    again = release_modules(built_model(config(), catalogue)[1])[0](h)
    other_seed = release_modules(built_model(config(seed=1), catalogue)[1])[0](h)
    assert torch.equal(first, again)
    assert not torch.equal(first, other_seed)


def test_p_outside_its_range_is_a_one_line_error(catalogue):
    with pytest.raises(BionicError, match=r"params\.release_failure\.p: 0\.0 is outside"):
        built_model(config(p=0.0), catalogue)


def test_a_run_trains_with_it(catalogue):
    result = train_run(config(hidden_sizes=(16,)), catalogue)
    assert result.status == "finished" and result.epochs_run == 1
    assert 0.0 <= result.val["accuracy"] <= 1.0
