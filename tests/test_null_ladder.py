"""The null ladder end to end: the reference's wiring and its controls' draws planned as one
sweep (every draw its own null seed, the reference's key untouched), trained, and compared with
one pooled row per control drawn several times (tested once, Holm over the controls)."""

from __future__ import annotations

import math

import pytest

from bionic_core.studies.comparison import compare
from bionic_core.studies.sweep_plan import DesignOptions, plan_sweep
from bionic_core.studies.sweep_run import run_sweep
from bionic_core.studies.tracking import Tracker

from .conftest import TINY_EXPERIMENTS, one_error_line, tiny_config

NULLS = (("layer_uniform", 2), ("degree_preserving", 1))


def ladder_plan(catalogue, seeds=(0, 1)):
    config = tiny_config(experiment="ladder", epochs=2, features=("adjacency_mask",),
                         hidden_sizes=(128, 128), lr=3e-3, seeds=seeds)
    return plan_sweep(config, catalogue, DesignOptions("null-ladder", nulls=NULLS))


def assert_mean_of_draws(pooled, draws):
    """A pooled row's test accuracy is, seed by seed, the mean over its draws."""
    for i in range(len(pooled.seeds)):
        expected = sum(d.values["test_accuracy"][i] for d in draws) / len(draws)
        assert pooled.values["test_accuracy"][i] == pytest.approx(expected)


def test_the_ladder_plan_varies_only_the_wiring(catalogue):
    plan = ladder_plan(catalogue)
    assert [c.name for c in plan.configurations] == [
        "reference", "layer_uniform#0", "layer_uniform#1", "degree_preserving#0"]
    plain = plan_sweep(plan.base, catalogue, DesignOptions("explicit",
                                                           sets=(("adjacency_mask",),)))
    # the reference is the experiment as it is: the same run keys as any other sweep's
    assert plan.configurations[0].key == plain.configurations[0].key
    draws = plan.configurations[1:]
    assert len({c.key for c in plan.configurations}) == 4  # every draw its own computation
    assert [c.config.params["adjacency_mask"]["wiring"] for c in draws] == [
        "layer_uniform", "layer_uniform", "degree_preserving"]
    assert [c.config.connectome["null_seed"] for c in draws] == [0, 1, 0]
    assert {c.group for c in draws} == {"structural"}
    assert plan.as_dict()["configurations"][2]["settings"] == [
        "adjacency_mask.wiring=layer_uniform", "connectome.null_seed=1"]


def test_a_trained_ladder_compares_each_control_once(store, catalogue):
    plan = ladder_plan(catalogue)
    tracker = Tracker()
    result = run_sweep(plan, catalogue, tracker)
    assert not result.failures and len(result.outcomes) == 8
    comparison = compare(tracker, [plan.sweep_id])
    rows = {r.name: r for r in comparison.rows}
    pooled = rows["layer_uniform (mean of 2 draws)"]
    draws = [rows["layer_uniform#0"], rows["layer_uniform#1"]]
    assert pooled.seeds == [0, 1]
    assert_mean_of_draws(pooled, draws)
    assert all(d.descriptive and math.isnan(d.p_holm) and d.delta is not None for d in draws)
    # Holm's family: the controls (pooled layer_uniform, the single degree_preserving draw)
    assert [f["m"] for f in comparison.families] == [2]
    assert not rows["degree_preserving#0"].descriptive
    assert math.isfinite(pooled.p_holm) and math.isfinite(rows["degree_preserving#0"].p_holm)
    assert any("null ladder" in note for note in comparison.notes)


def test_ladder_sweeps_of_other_seeds_pool_into_one_ladder(store, catalogue):
    # seeds added later in a sweep of their own (results/comparisons.toml pools them): one row
    # per configuration, one pooled row per control over every seed, Holm over the controls once
    tracker = Tracker()
    sweeps = [ladder_plan(catalogue, seeds=(0,)), ladder_plan(catalogue, seeds=(1,))]
    assert sweeps[0].sweep_id != sweeps[1].sweep_id
    for plan in sweeps:
        assert not run_sweep(plan, catalogue, tracker).failures
    comparison = compare(tracker, [plan.sweep_id for plan in sweeps])
    rows = {r.name: r for r in comparison.rows}
    assert sorted(rows) == ["degree_preserving#0", "layer_uniform (mean of 2 draws)",
                            "layer_uniform#0", "layer_uniform#1", "reference"]
    pooled = rows["layer_uniform (mean of 2 draws)"]
    assert pooled.seeds == rows["reference"].seeds == [0, 1]
    draws = [rows["layer_uniform#0"], rows["layer_uniform#1"]]
    assert_mean_of_draws(pooled, draws)
    assert [f["m"] for f in comparison.families] == [2]
    assert all(d.descriptive for d in draws) and math.isfinite(pooled.p_holm)


@pytest.mark.parametrize("args, fragment", [
    (["--design", "null-ladder"], "design null-ladder: the reference must have adjacency_mask"),
    (["--design", "null-ladder", "--with", "adjacency_mask", "--nulls", "bogus=3"],
     "--nulls.bogus: not a wiring control"),
    (["--design", "null-ladder", "--with", "adjacency_mask", "--nulls", "layer_uniform=x"],
     "--nulls.layer_uniform: expected a number of draws of at least 1"),
    (["--design", "null-ladder", "--with", "adjacency_mask", "--nulls", "dense_matched=2"],
     "--nulls.dense_matched: has no random draw"),
    (["--design", "leave-one-out", "--nulls", "uniform=1"],
     "nulls apply to the null-ladder design only"),
])
def test_a_bad_ladder_on_the_command_line_is_one_line(store, args, fragment):
    from bionic_cli.app import app
    from typer.testing import CliRunner

    (store / "exp.toml").write_text(TINY_EXPERIMENTS)
    result = CliRunner().invoke(app, ["ablate", "tiny", "--experiments", "exp.toml",
                                      "--dry-run", *args])
    one_error_line(result, fragment)
