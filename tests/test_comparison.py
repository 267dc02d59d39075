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
    recorded in MLflow the way run_tracked records it (tags, final metrics). ``extras`` of the
    same key add final metrics (``metrics``) and a metrics.json artifact (``artifact``)."""
    results: dict[tuple[frozenset[str], int], float] = {}
    extras: dict[tuple[frozenset[str], int], dict] = {}
    from bionic_core.training.loop import load_run_data

    # The real fingerprint of the tiny configs' data (a sweep refuses runs of other data).
    fingerprint = {"value": load_run_data(tiny_config()).fingerprint()}

    def run_tracked(config, catalogue, tracker, *, run_name, parent_id, extra_tags,
                    run_id=None, **_progress_and_checkpoints):
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
        extra = extras.get((frozenset(config.features), config.seed), {})
        tracker.log_metrics(run_id, extra.get("metrics", {}))
        if "artifact" in extra:
            tracker.log_json(run_id, "metrics.json", extra["artifact"])
        tracker.end(run_id, "FINISHED")
        return SimpleNamespace(status="finished", reason="", resumed_from_epoch=0), run_id

    monkeypatch.setattr(sweep_execution, "run_tracked", run_tracked)
    return SimpleNamespace(results=results, fingerprint=fingerprint, extras=extras)


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


# ============================================================================ sound answers

# Student's t quantiles for 2 degrees of freedom, from the closed form
# t_q = (2q − 1) / sqrt(2q(1 − q)): t(0.975) and t(0.8).
T2_975, T2_80 = 4.302652729911275, 1.0606601717798212


def test_compare_reports_raw_and_holm_p_and_detectable_effects(store, two_features,
                                                               fake_training):
    plan, values = leave_one_out_sweep(two_features, fake_training)
    data = json.loads(invoke("compare", plan.sweep_id, "--format", "json").stdout)
    rows = {r["configuration"]: r for r in data["rows"]}
    p_wiring = st.ttest_rel(values[NO_WIRING], values[REF]).pvalue
    p_plasticity = st.ttest_rel(values[NO_PLASTICITY], values[REF]).pvalue
    assert p_wiring < p_plasticity
    # Holm over m = 2: the smaller p doubles; the larger is max(2·p₁, p₂)
    assert rows["-wiring_test"]["delta"]["p_value"] == pytest.approx(p_wiring)
    assert rows["-wiring_test"]["p_holm"] == pytest.approx(2 * p_wiring)
    assert rows["-plasticity_test"]["p_holm"] == pytest.approx(max(2 * p_wiring, p_plasticity))
    # MDE = (t(0.975, 2) + t(0.8, 2)) · s_d / √3; s_d of −0.10, −0.09, −0.10 is √(1/3)·0.01
    sd = np.std(np.array(values[NO_WIRING]) - np.array(values[REF]), ddof=1)
    assert sd == pytest.approx(0.01 / np.sqrt(3))
    assert rows["-wiring_test"]["mde"] == pytest.approx((T2_975 + T2_80) * sd / np.sqrt(3))
    # after Holm: at α/m = 0.025, t(1 − 0.0125, 2) = (2q − 1)/√(2q(1 − q)) with q = 0.9875
    q = 1 - 0.025 / 2
    t_holm = (2 * q - 1) / np.sqrt(2 * q * (1 - q))
    assert rows["-wiring_test"]["mde_holm"] == pytest.approx((t_holm + T2_80) * sd / np.sqrt(3))
    assert rows["reference"]["p_holm"] is None
    assert data["families"] == [{"sweep_id": plan.sweep_id, "what": "Δ vs reference", "m": 2,
                                 "method": "holm"}]
    assert any("Holm over the 2 comparisons with the reference of sweep" in n and
               plan.sweep_id in n for n in data["notes"])
    assert data["warnings"] == []  # three seeds
    # the table and the csv carry both
    shown = invoke("compare", plan.sweep_id)
    assert "p (Holm)" in shown.stdout and "MDE (Holm) pp" in shown.stdout
    assert f"{2 * p_wiring:.3f}" in shown.stdout
    table = list(csv.DictReader(io.StringIO(invoke("compare", plan.sweep_id, "--format",
                                                   "csv").stdout)))
    assert float(table[1]["p_holm"]) == pytest.approx(2 * p_wiring)
    assert table[1]["holm_m"] == "2" and table[0]["p_holm"] == ""


def test_compare_leaves_ci_and_p_undefined_and_warns_about_few_seeds(store, two_features,
                                                                     fake_training):
    # Two seeds; without wiring every seed loses exactly 10 points (no spread).
    for seed, (ref, wiring, plasticity) in enumerate([(0.80, 0.70, 0.79), (0.82, 0.72, 0.84)]):
        fake_training.results[(REF, seed)] = ref
        fake_training.results[(NO_WIRING, seed)] = wiring
        fake_training.results[(NO_PLASTICITY, seed)] = plasticity
    base = sweep_config(experiment="two", features=REF_ORDER, seeds=(0, 1))
    plan = plan_sweep(base, two_features, DesignOptions("leave-one-out"))
    run_sweep(plan, two_features, Tracker())
    out = invoke("compare", plan.sweep_id, "--format", "json")
    data = json.loads(out.stdout)
    rows = {r["configuration"]: r for r in data["rows"]}
    wiring = rows["-wiring_test"]
    assert wiring["delta"]["delta"] == pytest.approx(-0.10)
    for key in ("ci_low", "ci_high", "p_value", "se"):
        assert wiring["delta"][key] is None, key  # zero spread: undefined, not p = 0
    assert wiring["p_holm"] is None and wiring["mde"] is None
    # −0.01 and +0.02: a paired t-test on 1 dof, p = 2·P(T₁ > |0.005| / (0.015 / √2))
    plasticity = rows["-plasticity_test"]
    t = 0.005 / (np.std([-0.01, 0.02], ddof=1) / np.sqrt(2))
    assert plasticity["delta"]["p_value"] == pytest.approx(1 - 2 * np.arctan(t) / np.pi)
    assert data["families"][0]["m"] == 1  # the undefined p is not counted
    assert plasticity["p_holm"] == pytest.approx(plasticity["delta"]["p_value"])
    assert len(data["warnings"]) == 1
    assert "fewer than 3 seeds compared (2 for -wiring_test, -plasticity_test)" in \
        data["warnings"][0] and "1 degree of freedom" in data["warnings"][0]
    markdown = invoke("compare", plan.sweep_id, "--format", "markdown").stdout
    wiring_line = next(line for line in markdown.splitlines() if "| -wiring_test |" in line)
    assert "-10.00 [n/a]" in wiring_line and "| n/a |" in wiring_line
    assert "**warning:** fewer than 3 seeds" in markdown
    table = invoke("compare", plan.sweep_id)
    assert "warning: fewer than 3 seeds" in table.stdout
    png = store / "two_seeds.png"  # a bar without a CI and whiskers 1 dof wide
    assert invoke("compare", plan.sweep_id, "--plot", str(png)).exit_code == 0
    assert png.read_bytes()[:4] == b"\x89PNG"

    # One seed: a Δ, and no CI, p or detectable effect anywhere.
    single = plan_sweep(base.replace(seeds=(0,)), two_features, DesignOptions("leave-one-out"))
    run_sweep(single, two_features, Tracker())
    one = json.loads(invoke("compare", single.sweep_id, "--format", "json").stdout)
    for row in one["rows"][1:]:
        assert row["delta"]["test"] == "none" and row["delta"]["p_value"] is None
        assert row["delta"]["ci_low"] is None and row["mde"] is None
    assert "(1 for" in one["warnings"][0] and "no CI or p" in one["warnings"][0]


def test_few_seeds_warning_groups_rows_by_their_seed_count():
    """Rows of one and of two seeds in one table: each is listed under its own count (a two-seed
    row is not said to have one), and each count says what it leaves."""
    from bionic_core.studies.comparison_family import warn_few_seeds

    def row(name, n):
        return SimpleNamespace(name=name, delta=None if n is None else SimpleNamespace(n=n))

    rows = [row("reference", None), row("-a", 1), row("-b", 2), row("-c", 1), row("-d", 3)]
    comparison = SimpleNamespace(rows=rows, warnings=[])
    warn_few_seeds(comparison)
    (text,) = comparison.warnings
    assert "(1 for -a, -c; 2 for -b)" in text
    assert "with 1, no CI or p" in text and "with 2, a t-test on 1 degree of freedom" in text
    assert "-d" not in text
    comparison = SimpleNamespace(rows=[row("-b", 2)], warnings=[])
    warn_few_seeds(comparison)
    assert "(2 for -b): a t-test on 1 degree of freedom" in comparison.warnings[0]


def test_per_class_precision_excludes_seeds_that_never_predicted_the_class(
        store, two_features, fake_training):
    precision = {0: 0.5, 1: None, 2: 0.3}  # seed 1 never predicted Disgust
    for seed, value in precision.items():
        metrics = {"final_test_recall_Disgust": 0.1 * seed, "final_val_recall_Disgust": 0.9,
                   "final_test_public_recall_Disgust": 0.7}
        if value is not None:
            metrics["final_test_precision_Disgust"] = value
        fake_training.extras[(REF, seed)] = {"metrics": metrics}
    plan, _ = leave_one_out_sweep(two_features, fake_training)
    data = json.loads(invoke("compare", plan.sweep_id, "--format", "json").stdout)
    ref = next(r for r in data["rows"] if r["configuration"] == "reference")
    disgust = ref["per_class"]["Disgust"]
    # (0.5 + 0.3) / 2 on 2 of 3 seeds — not (0.5 + 0 + 0.3) / 3
    assert disgust["precision"]["mean"] == pytest.approx(0.4)
    assert (disgust["precision"]["n"], disgust["precision"]["seeds"]) == (2, 3)
    assert disgust["precision"]["std"] == pytest.approx(np.sqrt(0.02))
    assert disgust["recall"]["mean"] == pytest.approx(0.1) and disgust["recall"]["n"] == 3
    shown = invoke("compare", plan.sweep_id, "--per-class")
    assert "0.40 ± 0.14 (2/3 seeds)" in shown.stdout


def _per_image(correct: str) -> dict:
    """A metrics.json whose test predictions are right where ``correct`` has a 1 (labels all
    class 3; a wrong prediction is class 0)."""
    return {"test": {"per_image": {"labels": "3" * len(correct),
                                   "predictions": "".join("3" if c == "1" else "0"
                                                          for c in correct)}}}


def test_mcnemar_beside_the_t_test(store, two_features, fake_training):
    # 8 test images. Reference vs -wiring_test per seed: seed 0 b = 1, c = 3; seed 1 b = 0,
    # c = 2; seed 2 b = 1, c = 1 (b: right without wiring only, c: right in the reference only)
    reference = {0: "11110000", 1: "11001100", 2: "10101010"}
    wiring = {0: "10001000", 1: "00001100", 2: "00101011"}
    for seed in range(3):
        fake_training.extras[(REF, seed)] = {"artifact": _per_image(reference[seed])}
        fake_training.extras[(NO_WIRING, seed)] = {"artifact": _per_image(wiring[seed])}
    plan, _ = leave_one_out_sweep(two_features, fake_training)
    out = invoke("compare", plan.sweep_id, "--mcnemar", "--format", "json")
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    rows = {r["configuration"]: r for r in data["rows"]}
    images = rows["-wiring_test"]["images"]
    assert (images["only_this"], images["only_reference"]) == (2, 6)
    assert images["images"] == 24 and images["seeds"] == 3
    assert images["delta"] == pytest.approx((2 - 6) / 24)
    # exact: 2 · P(X ≤ 2 | n = 8, ½) = 2 · (1 + 8 + 28) / 256
    assert images["p_value"] == pytest.approx(74 / 256)
    assert images["p_holm"] == pytest.approx(74 / 256)  # the only row with predictions
    assert rows["-wiring_test"]["delta"]["test"] == "paired"  # the t-test is still there
    assert rows["-plasticity_test"]["images"] is None
    assert any("McNemar not computed for -plasticity_test" in n for n in data["notes"])
    shown = invoke("compare", plan.sweep_id, "--mcnemar")
    assert "Per-image paired test" in shown.stdout and "2 / 6" in shown.stdout


def test_bootstrap_ci_is_an_option(store, two_features, fake_training):
    plan, values = leave_one_out_sweep(two_features, fake_training)
    data = json.loads(invoke("compare", plan.sweep_id, "--ci", "bootstrap", "--format",
                             "json").stdout)
    wiring = next(r for r in data["rows"] if r["configuration"] == "-wiring_test")
    # differences −0.10, −0.09, −0.10: every resampled mean lies in [−0.10, −0.09]
    low, high = wiring["bootstrap_ci"]
    assert -0.10 - 1e-12 <= low <= high <= -0.09 + 1e-12
    assert low == pytest.approx(-0.10)  # P(all three −0.10) = 8/27 > 2.5 %
    one_error_line(invoke("compare", plan.sweep_id, "--ci", "jackknife"), "--ci jackknife")


FRACTION = ("fa_test", "fb_test", "fc_test", "fd_test", "fe_test")


def test_fractional_sweep_effects_and_aliases(store, catalogue, register_plugin,
                                              fake_training):
    for name in FRACTION:
        register_plugin(feature_plugin(name, "functional"))
    # accuracy = 0.5 + effects/2 · x (x = ±1): main effects a 0.04, b −0.02, c 0.01, and an
    # a:b interaction of 0.03; d and e do nothing. ± 0.001 by seed.
    main = {"fa_test": 0.04, "fb_test": -0.02, "fc_test": 0.01}

    def accuracy(on: frozenset[str]) -> float:
        x = {f: 1.0 if f in on else -1.0 for f in FRACTION}
        return (0.5 + sum(e / 2 * x[f] for f, e in main.items())
                + 0.03 / 2 * x["fa_test"] * x["fb_test"])

    base = sweep_config(experiment="frac", features=FRACTION, seeds=(0, 1))
    plan = plan_sweep(base, catalogue, DesignOptions("fractional", factors=FRACTION))
    assert len(plan.configurations) == 16  # 2^(5−1), not 32
    for c in plan.configurations:
        for seed, noise in ((0, 0.001), (1, -0.001)):
            fake_training.results[(c.configuration.features, seed)] = (
                accuracy(c.configuration.features) + noise)
    run_sweep(plan, catalogue, Tracker())
    data = json.loads(invoke("compare", "frac", "--format", "json").stdout)
    fac = data["factorial"]
    assert fac["design"] == "fractional"
    effects = {e["term"]: e for e in fac["effects"]}
    assert len(effects) == 5 + 10  # every main effect and two-factor interaction
    for f, e in main.items():
        assert effects[f]["estimate"] == pytest.approx(e)
    assert effects["fa_test:fb_test"]["estimate"] == pytest.approx(0.03)
    assert effects["fd_test:fe_test"]["estimate"] == pytest.approx(0.0, abs=1e-12)
    assert fac["fraction"]["defining_relation"] == ["ABCDE"]
    assert effects["fa_test:fb_test"]["aliased_with"] == ["fc_test:fd_test:fe_test"]
    assert effects["fa_test"]["aliased_with"] == ["fb_test:fc_test:fd_test:fe_test"]
    assert {"sweep_id": plan.sweep_id, "what": "factorial effects", "m": 15,
            "method": "holm"} in data["families"]
    markdown = invoke("compare", "frac", "--format", "markdown").stdout
    assert "aliased with (letters)" in markdown and "| CDE |" in markdown  # AB = CDE
    assert "fraction: A = fa_test, B = fb_test" in markdown and "I = ABCDE" in markdown


def test_fractional_dry_run_prints_the_alias_structure(in_tmp):
    from .conftest import TINY_EXPERIMENTS

    (in_tmp / "exp.toml").write_text(TINY_EXPERIMENTS)
    factors = "layer_norm,label_smoothing,weight_decay,lr_scheduler,augmentation"
    out = runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml", "--design",
                              "fractional", "--resolution", "5", "--factors", factors,
                              "--dry-run"])
    assert out.exit_code == 0, out.output
    assert "2^(5−1) fraction, resolution V: 16 of 32 configurations" in out.stdout
    assert "E = ABCD" in out.stdout and "I = ABCDE" in out.stdout
    assert "CDE" in out.stdout  # AB = CDE
    plan = json.loads(runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml",
                                          "--design", "fractional", "--factors", factors,
                                          "--dry-run", "--json"]).stdout)
    assert plan["n_configurations"] == 16 and plan["fraction"]["generators"] == ["E = ABCD"]
    bad = runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml", "--design",
                              "fractional", "--resolution", "7", "--dry-run"])
    one_error_line(bad, "--resolution", "expected one of 3, 4, 5")


def test_delta_axis_clips_whiskers_that_would_flatten_the_bars():
    from bionic_core.studies.figures import delta_axis_limits

    # The two-seed whiskers, −270 to +323 pp, around bars of +2 and −1 pp: the axis
    # reaches 4 × the largest |Δ| = 8 pp on each side, and the whiskers are clipped there.
    deltas, low, high = np.array([2.0, -1.0]), np.array([-270.0, -3.0]), np.array([323.0, 1.0])
    assert delta_axis_limits(deltas, low, high) == (-8.0, 8.0)
    # CIs within reach are shown whole: the axis ends at the CI ends (and includes 0)
    assert delta_axis_limits(np.array([-3.0, 1.0]), np.array([-4.0, 0.5]),
                             np.array([-2.0, 1.5])) == (-4.0, 1.5)
    # all Δ ≈ 0: at least ±1 pp; an undefined CI is ignored
    assert delta_axis_limits(np.array([0.0, 0.0]), np.array([-0.5, np.nan]),
                             np.array([0.4, np.nan])) == (-0.5, 0.4)
    assert delta_axis_limits(np.array([0.0]), np.array([-5.0]), np.array([5.0])) == (-1.0, 1.0)
