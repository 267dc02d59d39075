"""`bionic compare`: seed statistics, Δ versus the reference (paired / Welch), factorial
effects and Shapley values, output formats, plots and refusals — on sweeps whose run results
are set by the test (the sweep machinery and MLflow are real, training is replaced)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from bionic_cli.app import app
from scipy import stats as st
from typer.testing import CliRunner

import bionic_core.studies.sweep_execution as sweep_execution
from bionic_core.contract.features import Feature
from bionic_core.contract.hookspecs import hookimpl
from bionic_core.studies.sweep_plan import DesignOptions, plan_sweep
from bionic_core.studies.sweep_run import run_sweep
from bionic_core.studies.tracking import TAG_KEY, TAG_KIND, TAG_PROVENANCE, Tracker, provenance_tag

from .conftest import one_error_line, tiny_config

runner = CliRunner()



def feature_plugin(name: str, group: str):
    class Plugin:
        @hookimpl
        def bionic_feature(self):
            return Feature(name=name, group=group, help="test feature")

    return Plugin()


@pytest.fixture
def fake_training(monkeypatch):
    """Replace training by a lookup: ``results[(features, seed)] = accuracy``; every run is
    recorded in MLflow the way run_tracked records it (tags, final metrics)."""
    results: dict[tuple[frozenset[str], int], float] = {}
    from bionic_core.training.loop import load_run_data

    # The real fingerprint of the tiny configs' data (a sweep refuses runs of other data).
    fingerprint = {"value": load_run_data(tiny_config()).fingerprint()}

    def run_tracked(config, catalogue, tracker, *, run_name, parent_id, extra_tags,
                    on_epoch, checkpoint_dir, run_id=None):
        accuracy = results[(frozenset(config.features), config.seed)]
        tags = {TAG_KEY: config.key(), TAG_KIND: "run", "bionic.dataset": "demo-small",
                "bionic.dataset_fingerprint": fingerprint["value"],
                "bionic.dataset_is_demo": "True",
                TAG_PROVENANCE: provenance_tag(config.feature_provenance), **extra_tags}
        run_id = tracker.start(config.experiment, run_name, tags=tags, parent_id=parent_id)
        tracker.log_metrics(run_id, {
            "final_test_accuracy": accuracy, "final_test_macro_f1": accuracy / 2,
            "final_val_accuracy": accuracy, "final_val_macro_f1": accuracy / 2,
            "final_n_parameters": 1000 + 10 * len(config.features),
            "final_train_seconds": 2.0})
        tracker.end(run_id, "FINISHED")
        return SimpleNamespace(status="finished", reason="", resumed_from_epoch=0), run_id

    monkeypatch.setattr(sweep_execution, "run_tracked", run_tracked)
    return SimpleNamespace(results=results, fingerprint=fingerprint)


@pytest.fixture
def two_features(catalogue, register_plugin):
    register_plugin(feature_plugin("wiring_test", "structural"))
    register_plugin(feature_plugin("plasticity_test", "functional"))
    return catalogue


def sweep_config(**changes):
    """A tiny config whose sweep trains run by run (the path ``fake_training`` replaces)."""
    return tiny_config(multimodel=False, **changes)


def invoke(*args: str):
    return runner.invoke(app, list(args))


REF_ORDER = ("wiring_test", "plasticity_test")
REF = frozenset(REF_ORDER)
NO_WIRING = frozenset({"plasticity_test"})
NO_PLASTICITY = frozenset({"wiring_test"})


def leave_one_out_sweep(catalogue, fake, seeds=(0, 1, 2)):
    values = {REF: [0.80, 0.82, 0.84], NO_WIRING: [0.70, 0.73, 0.74],
              NO_PLASTICITY: [0.79, 0.80, 0.85]}
    for features, accs in values.items():
        for seed, acc in zip(seeds, accs, strict=True):
            fake.results[(features, seed)] = acc
    base = sweep_config(experiment="cmp", features=REF_ORDER, seeds=tuple(seeds))
    plan = plan_sweep(base, catalogue, DesignOptions("leave-one-out"))
    result = run_sweep(plan, catalogue, Tracker())
    assert not result.failures
    return plan, values


def test_compare_json_statistics_against_hand_computed_values(store, two_features,
                                                              fake_training):
    plan, values = leave_one_out_sweep(two_features, fake_training)
    out = invoke("compare", "cmp", "--format", "json")  # the experiment's latest sweep
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["sweeps"][0]["sweep_id"] == plan.sweep_id
    assert data["split"] == "test" and data["reference"] == "reference"
    assert data["dataset"]["is_demo"] is True
    rows = {r["configuration"]: r for r in data["rows"]}
    assert list(rows) == ["reference", "-wiring_test", "-plasticity_test"]
    ref = rows["reference"]
    assert ref["accuracy"]["mean"] == pytest.approx(0.82)
    assert ref["accuracy"]["std"] == pytest.approx(0.02)
    assert ref["macro_f1"]["mean"] == pytest.approx(0.41)
    assert ref["delta"] is None and ref["seeds"] == [0, 1, 2]
    # Same seeds → paired t-test on the per-seed differences.
    wiring = rows["-wiring_test"]
    diffs = np.array(values[NO_WIRING]) - np.array(values[REF])
    expected = st.ttest_rel(values[NO_WIRING], values[REF])
    assert wiring["delta"]["test"] == "paired"
    assert wiring["delta"]["delta"] == pytest.approx(diffs.mean())
    assert wiring["delta"]["p_value"] == pytest.approx(expected.pvalue)
    half = st.t.ppf(0.975, 2) * diffs.std(ddof=1) / np.sqrt(3)
    assert wiring["delta"]["ci_low"] == pytest.approx(diffs.mean() - half)
    assert wiring["removed"] == ["wiring_test"] and wiring["group"] == "structural"
    assert rows["-plasticity_test"]["group"] == "functional"
    assert wiring["n_parameters"] == 1010 and wiring["train_seconds"] == 2.0

    # Another sweep on other seeds, merged in: no seed pairs → Welch's t-test.
    fake_training.results[(frozenset(), 5)] = 0.60
    fake_training.results[(frozenset(), 6)] = 0.65
    fake_training.results[(frozenset(), 7)] = 0.61
    base = sweep_config(experiment="cmp", features=REF_ORDER, seeds=(5, 6, 7))
    other = plan_sweep(base, two_features, DesignOptions("explicit", sets=((),)))
    run_sweep(other, two_features, Tracker())
    merged = json.loads(invoke("compare", plan.sweep_id[:6], other.sweep_id,
                               "--format", "json").stdout)
    none_row = next(r for r in merged["rows"] if r["configuration"] == "e:none")
    welch = st.ttest_ind([0.60, 0.65, 0.61], values[REF], equal_var=False)
    assert none_row["delta"]["test"] == "welch"
    assert none_row["delta"]["p_value"] == pytest.approx(welch.pvalue)
    assert len(merged["rows"]) == 4 and merged["reference"] == "reference"


def test_compare_text_formats_and_plot(store, two_features, fake_training):
    plan, _ = leave_one_out_sweep(two_features, fake_training)
    markdown = invoke("compare", plan.sweep_id, "--format", "markdown").stdout
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(lines) == 2 + 3 and "Δ accuracy" in lines[0]
    assert "| reference |" in markdown and "82.00 ± 2.00" in markdown
    assert "-9.67" in markdown and "(paired)" in markdown  # Δ of -wiring_test in pp

    table = list(csv.DictReader(io.StringIO(invoke("compare", plan.sweep_id, "--format",
                                                   "csv").stdout)))
    assert [r["configuration"] for r in table] == ["reference", "-wiring_test",
                                                   "-plasticity_test"]
    assert float(table[1]["delta"]) == pytest.approx(-0.0966666, abs=1e-6)
    assert table[0]["delta"] == "" and table[1]["test"] == "paired"

    latex = invoke("compare", plan.sweep_id, "--format", "latex").stdout
    assert r"\begin{tabular}" in latex and r"-wiring\_test" in latex and r"$\pm$" in latex

    shown = invoke("compare", plan.sweep_id)
    assert shown.exit_code == 0 and "reference" in shown.stdout

    png = store / "deltas.png"
    drawn = invoke("compare", plan.sweep_id, "--plot", str(png))
    assert drawn.exit_code == 0, drawn.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_factorial_effects_and_shapley(store, two_features, fake_training):
    factors = ("wiring_test", "plasticity_test")
    # accuracy = 0.5 + 0.10·wiring + 0.04·plasticity + 0.02·both, ± 0.001 by seed
    for w in (0, 1):
        for p in (0, 1):
            on = frozenset(f for f, v in zip(factors, (w, p), strict=True) if v)
            for seed, noise in ((0, 0.001), (1, -0.001)):
                fake_training.results[(on, seed)] = 0.5 + 0.1 * w + 0.04 * p + 0.02 * w * p + noise
    base = sweep_config(experiment="fac", features=factors, seeds=(0, 1))
    plan = plan_sweep(base, two_features, DesignOptions("factorial", factors=factors))
    assert len(plan.runs) == 8
    run_sweep(plan, two_features, Tracker())
    data = json.loads(invoke("compare", "fac", "--format", "json").stdout)
    fac = data["factorial"]
    effects = {e["term"]: e for e in fac["effects"]}
    # Effect = mean change off → on averaged over the other factor; a:b = half the change of
    # a's effect when b is switched on.
    assert effects["wiring_test"]["estimate"] == pytest.approx(0.11)
    assert effects["plasticity_test"]["estimate"] == pytest.approx(0.05)
    assert effects["wiring_test:plasticity_test"]["estimate"] == pytest.approx(0.01)
    assert effects["wiring_test"]["ci_low"] < 0.11 < effects["wiring_test"]["ci_high"]
    # Shapley: wiring = ½[(0.6 − 0.5) + (0.66 − 0.54)] = 0.11, plasticity = 0.05.
    assert fac["shapley"]["wiring_test"] == pytest.approx(0.11)
    assert fac["shapley"]["plasticity_test"] == pytest.approx(0.05)
    assert data["reference"] == "f:wiring_test+plasticity_test"
    markdown = invoke("compare", "fac", "--format", "markdown").stdout
    assert "Factorial effects" in markdown and "wiring_test:plasticity_test" in markdown
    png = store / "heat.png"
    assert invoke("compare", "fac", "--plot", str(png)).exit_code == 0
    assert png.read_bytes()[:4] == b"\x89PNG"




def test_compare_refuses_other_datasets_and_unknown_targets(store, two_features,
                                                            fake_training):
    one_error_line(invoke("compare", "cmp"), "cmp: unknown experiment or sweep id")
    plan, _ = leave_one_out_sweep(two_features, fake_training)
    one_error_line(invoke("compare", "nope"), "nope: unknown experiment or sweep id",
                    plan.sweep_id)
    one_error_line(invoke("compare", "cmp", "--format", "yaml"), "--format yaml")
    # The same design on another dataset (another fingerprint): a separate sweep.
    fake_training.fingerprint["value"] = "fp-other"
    for seed in (3, 4):
        for features in (REF, NO_WIRING, NO_PLASTICITY):
            fake_training.results[(features, seed)] = 0.5
    base = sweep_config(experiment="cmp", features=REF_ORDER, seeds=(3, 4))
    other = plan_sweep(base, two_features, DesignOptions("leave-one-out"))
    run_sweep(other, two_features, Tracker())
    one_error_line(invoke("compare", plan.sweep_id, other.sweep_id),
                    "different datasets", "fp-other", "--force")
    forced = invoke("compare", plan.sweep_id, other.sweep_id, "--force", "--format", "json")
    assert forced.exit_code == 0, forced.output
    assert "--force" in json.loads(forced.stdout)["notes"][0]


def test_compare_refuses_runs_of_different_feature_code(store, catalogue, register_plugin,
                                                        fake_training):
    """The same design, once with a feature at 'pkg 1.0' and once at 'pkg 2.0': not pooled or
    compared silently."""
    plan, _ = leave_one_out_sweep(
        _versioned(catalogue, register_plugin, "testpkg 1.0"), fake_training)
    catalogue.remove("wiring_test")
    register_plugin(feature_plugin("wiring_test", "structural"), source="testpkg 2.0")
    catalogue.entries["wiring_test"].feature = replace(catalogue["wiring_test"],
                                                       provenance="testpkg 2.0")
    for seed in (0, 1, 2):
        for features in (REF, NO_WIRING, NO_PLASTICITY):
            fake_training.results[(features, seed)] = 0.6
    base = sweep_config(experiment="cmp", features=REF_ORDER, seeds=(0, 1, 2))
    newer = plan_sweep(base, catalogue, DesignOptions("leave-one-out"))
    assert newer.sweep_id != plan.sweep_id  # the feature's code is part of every run key
    run_sweep(newer, catalogue, Tracker())
    one_error_line(invoke("compare", plan.sweep_id, newer.sweep_id),
                   "different code of a feature", "wiring_test: testpkg 1.0 vs testpkg 2.0",
                   "--force")
    forced = invoke("compare", plan.sweep_id, newer.sweep_id, "--force", "--format", "json")
    assert forced.exit_code == 0, forced.output
    assert any("different feature code" in n for n in json.loads(forced.stdout)["notes"])


def _versioned(catalogue, register_plugin, provenance):
    register_plugin(feature_plugin("wiring_test", "structural"), source=provenance)
    register_plugin(feature_plugin("plasticity_test", "functional"))
    catalogue.entries["wiring_test"].feature = replace(catalogue["wiring_test"],
                                                       provenance=provenance)
    return catalogue
