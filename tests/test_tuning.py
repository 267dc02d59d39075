"""`bionic tune`: the search space (core + features, narrowed by the tune table), a real study
with MLflow parent and trial runs, pruning, rerun continuation, export, and bad input."""

from __future__ import annotations

import json
import sys

import optuna
import pytest
from bionic_cli.app import app
from typer.testing import CliRunner

from bionic_core.contract.errors import BionicError
from bionic_core.contract.features import Feature, Param
from bionic_core.contract.hookspecs import hookimpl
from bionic_core.experiments import ExperimentFile
from bionic_core.studies import tuning
from bionic_core.studies.tracking import Tracker
from bionic_core.studies.tuning import (
    SearchSpace,
    build_search_space,
    export_experiment,
    make_sampler,
    open_tuning,
    session,
)

from .conftest import one_error_line, tiny_config
from .test_sweep import runs_of

runner = CliRunner()

TINY = """
[experiments.tiny]
dataset = "demo-small"
features = []
hidden_sizes = [16]
batch_size = 64
epochs = 2
patience = 0
seeds = [0]
device = "cpu"
"""


class Knob:
    """A test feature declaring one parameter of each kind (no effect on training)."""

    @hookimpl
    def bionic_feature(self):
        return Feature(name="knob", group="functional", help="test feature", params=(
            Param("rate", float, 1e-3, low=1e-4, high=1e-1, log=True),
            Param("width", int, 4, low=2, high=8),
            Param("mode", str, "a", choices=("a", "b")),
            Param("flag", bool, True),  # no range: fixed unless the tune table gives one
        ))


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: with the CPU shared, two spinning OpenMP threads make these tiny runs
    up to 100x slower (and one thread is what a worker per core should use anyway)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def knob(catalogue, register_plugin):
    register_plugin(Knob())
    return catalogue


@pytest.fixture
def store(store):
    """The shared empty store plus a tiny experiments file."""
    (store / "exp.toml").write_text(TINY)
    return store


# ============================================================================ search space


def test_space_has_core_and_enabled_feature_ranges(knob):
    space = build_search_space(tiny_config(features=("knob",)), knob, "t")
    assert set(space.dimensions) == {"lr", "batch_size", "activation", "knob.rate",
                                     "knob.width", "knob.mode"}
    rate = space.dimensions["knob.rate"]
    assert (rate.low, rate.high, rate.log) == (1e-4, 1e-1, True)
    dists = space.distributions()
    assert isinstance(dists["knob.width"], optuna.distributions.IntDistribution)
    assert isinstance(dists["knob.mode"], optuna.distributions.CategoricalDistribution)
    assert dists["lr"].log
    # A feature that is off contributes nothing.
    assert not any(n.startswith("knob.") for n in
                   build_search_space(tiny_config(), knob, "t").dimensions)


def test_tune_table_narrows_fixes_and_applies(knob):
    config = tiny_config(features=("knob",), tune={
        "ranges": {"lr": [1e-4, 3e-3], "knob.rate": [1e-3, 1e-2], "knob.width": [3, 3]},
        "choices": {"batch_size": [32, 64], "knob.flag": [True, False]},
        "fixed": {"activation": "gelu", "knob.mode": "b"}})
    space = build_search_space(config, knob, "t")
    assert set(space.dimensions) == {"lr", "knob.rate", "batch_size", "knob.flag"}
    assert (space.dimensions["lr"].low, space.dimensions["lr"].high) == (1e-4, 3e-3)
    assert space.dimensions["knob.rate"].log  # the plugin's log scale is kept
    assert space.dimensions["batch_size"].choices == (32, 64)
    assert space.fixed == {"activation": "gelu", "knob.mode": "b", "knob.width": 3}
    trial = optuna.trial.FixedTrial({"lr": 2e-3, "knob.rate": 5e-3, "batch_size": 32,
                                     "knob.flag": False})
    applied = space.apply(config, space.suggest(trial))
    assert (applied.lr, applied.batch_size, applied.activation) == (2e-3, 32, "gelu")
    assert applied.params["knob"] == {"rate": 5e-3, "flag": False, "mode": "b", "width": 3}
    assert applied.key() != config.key()


def test_search_explores_only_the_listed_parameters(knob):
    config = tiny_config(features=("knob",), tune={"search": ["lr", "knob.rate"],
                                                   "ranges": {"lr": [1e-4, 1e-3]}})
    space = build_search_space(config, knob, "t")
    assert list(space.dimensions) == ["lr", "knob.rate"] and space.fixed == {}


@pytest.mark.parametrize("tune, fragment", [
    ({"ranges": {"lr": [1e-2, 1e-4]}}, "t.ranges.lr: low 0.01 > high 0.0001"),
    ({"ranges": {"knob.width": [9, 2]}}, "t.ranges.knob.width: low 9 > high 2"),
    ({"ranges": {"knob.mode": [0, 1]}}, "has no numeric range"),
    ({"ranges": {"knob.rate": [0.0, 1e-2]}}, "log-scale range needs low > 0"),
    ({"ranges": {"nope": [1, 2]}}, "unknown parameter 'nope'"),
    ({"fixed": {"hebbian.rate": 1e-3}}, "feature 'hebbian' is not enabled"),
    ({"fixed": {"batch_size": "big"}}, "t.fixed.batch_size: expected int"),
    ({"fixed": {"lr": 1e-3}, "ranges": {"lr": [1e-4, 1e-2]}}, "also fixed"),
    ({"sampler": "grid"}, "t.sampler: expected one of tpe, random, gp"),
    ({"bogus": 1}, "unknown key 'bogus'"),
    ({"search": ["lr"], "ranges": {"knob.rate": [1e-3, 1e-2]}}, "not in t.search"),
    ({"search": ["knob.nope"]}, "t.search: unknown parameter 'knob.nope'"),
])
def test_bad_tune_tables(knob, tune, fragment):
    with pytest.raises(BionicError, match=None) as err:
        build_search_space(tiny_config(features=("knob",), tune=tune), knob, "t")
    assert fragment in str(err.value)


def test_empty_space_is_an_error(catalogue):
    config = tiny_config(tune={"fixed": {"lr": 1e-3, "batch_size": 64, "activation": "relu"}})
    with pytest.raises(BionicError, match="the search space is empty"):
        build_search_space(config, catalogue, "t")


def test_gp_sampler_without_its_dependencies_is_one_clear_error(monkeypatch):
    assert isinstance(make_sampler("gp", 0), optuna.samplers.GPSampler)
    monkeypatch.setitem(sys.modules, "scipy", None)  # `import scipy` now fails
    with pytest.raises(BionicError, match="--sampler gp: .* use --sampler tpe"):
        make_sampler("gp", 0)


# ============================================================================ studies


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_pruned_trial_is_a_killed_mlflow_run_under_the_parent(store, catalogue, monkeypatch):
    # open_tuning looks make_pruner up in the session module.
    monkeypatch.setattr(session, "make_pruner", lambda kind, epochs: AlwaysPrune())
    base = tiny_config(epochs=3, hidden_sizes=(16,))
    space = SearchSpace({"lr": Param("lr", float, 1e-3, low=1e-3, high=1e-2, log=True)})
    tracker = Tracker()
    result = open_tuning(base, catalogue, tracker, space, study_name="pruning").optimize(2)
    assert [t.state for t in result.trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert [len(t.intermediate_values) for t in result.trials] == [1, 1]  # stopped at epoch 1
    assert result.best is None
    trials = runs_of(tracker.uri, "tiny", "trial")
    assert len(trials) == 2
    for run in trials:
        assert run.info.status == "KILLED"  # never FINISHED: no sweep may take it as done
        assert run.data.tags["optuna.state"] == "PRUNED"
        assert run.data.tags["mlflow.parentRunId"] == result.parent_run_id
    assert not list((store / ".bionic").glob("**/*.pt"))


def test_tune_cli_study_trials_parent_rerun_and_export(store):
    args = ["tune", "tiny", "--experiments", "exp.toml", "--sampler", "random", "--json"]
    first = runner.invoke(app, [*args, "--trials", "3", "--export", "tuned.toml"])
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout.strip().splitlines()[-1])
    assert out["study"] == "tune-tiny" and out["new_trials"] == [0, 1, 2]
    assert out["counts"] == {"complete": 3}  # median pruning starts after 3 trials
    study = optuna.load_study(study_name="tune-tiny", storage=f"sqlite:///{store}/optuna.db")
    assert study.user_attrs["bionic.experiment"] == "tiny"
    assert study.trials[0].params == {"lr": 1e-3, "batch_size": 64, "activation": "relu"}

    uri = f"sqlite:///{store / 'mlflow.db'}"
    parents = runs_of(uri, "tiny", "study")
    assert len(parents) == 1 and parents[0].info.run_id == out["parent_run_id"]
    parent = parents[0]
    assert parent.data.metrics["best_value"] == pytest.approx(out["best"]["value"])
    assert parent.data.tags["best.trial"] == str(out["best"]["trial"])
    assert parent.data.tags["best.lr"] == str(out["best"]["params"]["lr"])
    trials = runs_of(uri, "tiny", "trial")
    assert sorted(r.data.tags["optuna.trial_number"] for r in trials) == ["0", "1", "2"]
    for run in trials:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.data.tags["optuna.state"] == "COMPLETE" and run.info.status == "FINISHED"
        number = int(run.data.tags["optuna.trial_number"])
        assert float(run.data.params["lr"]) == pytest.approx(study.trials[number].params["lr"])
        assert run.data.metrics["final_val_accuracy"] == pytest.approx(study.trials[number].value)

    exported = ExperimentFile.load(store / "tuned.toml").config("tiny_tuned")
    best = out["best"]["params"]
    assert (exported.lr, exported.batch_size, exported.activation) == (
        best["lr"], best["batch_size"], best["activation"])
    assert (exported.dataset, exported.epochs, exported.hidden_sizes) == ("demo-small", 2, (16,))

    again = runner.invoke(app, [*args, "--trials", "1"])  # the same study continues
    assert again.exit_code == 0, again.output
    out2 = json.loads(again.stdout.strip().splitlines()[-1])
    assert out2["new_trials"] == [3] and out2["parent_run_id"] == out["parent_run_id"]
    assert len(optuna.load_study(study_name="tune-tiny",
                                 storage=f"sqlite:///{store}/optuna.db").trials) == 4
    assert len(runs_of(uri, "tiny", "study")) == 1


def test_export_replaces_its_own_block_and_refuses_foreign_tables(tmp_path, catalogue):
    path = tmp_path / "experiments.toml"
    path.write_text(TINY)
    config = tiny_config(experiment="tiny", params={}, lr=2e-3)
    export_experiment(path, "tiny_tuned", config, catalogue, "first")
    export_experiment(path, "tiny_tuned", config.replace(lr=5e-4), catalogue, "second")
    text = path.read_text()
    assert text.count("[experiments.tiny_tuned]") == 1 and "second" in text
    file = ExperimentFile.load(path)
    assert file.config("tiny_tuned").lr == 5e-4 and file.config("tiny").lr == 1e-3
    with pytest.raises(BionicError, match="experiments.tiny already exists"):
        export_experiment(path, "tiny", config, catalogue, "x")


# ============================================================================ bad input


def _tune(*args: str):
    return runner.invoke(app, ["tune", "tiny", "--experiments", "exp.toml", "--trials", "1",
                               *args])


def test_unreachable_storage_is_one_line_without_the_password(store):
    line = one_error_line(_tune("--storage", "postgresql+psycopg2://me:secret@127.0.0.1:1/db"),
                          "--storage postgresql+psycopg2://me:***@127.0.0.1:1/db",
                          "cannot be used")
    assert "secret" not in line
    one_error_line(_tune("--storage", "sqlite:////no/such/dir/optuna.db"), "cannot be used")
    one_error_line(_tune("--storage", "not a url"), "not a database URL")


def test_study_of_another_experiment_is_refused(store):
    study = optuna.create_study(study_name="shared", storage=f"sqlite:///{store}/optuna.db")
    study.set_user_attr("bionic.experiment", "other")
    one_error_line(_tune("--study", "shared"), "--study shared", "belongs to experiment "
                   "'other', not 'tiny'")
    assert not runs_of(f"sqlite:///{store / 'mlflow.db'}", "tiny")  # nothing was recorded


def test_bad_tune_table_in_the_file_is_one_line(store):
    (store / "exp.toml").write_text(
        TINY + '[experiments.tiny.tune]\nranges = { lr = [0.1, 0.01] }\n')
    one_error_line(_tune(), "exp.toml: experiments.tiny.tune.ranges.lr: low 0.1 > high 0.01")
    (store / "exp.toml").write_text(
        TINY + '[experiments.tiny.tune]\nfixed = { lr = 0.001, batch_size = 64, '
               'activation = "relu" }\n')
    one_error_line(_tune(), "the search space is empty")


def test_repository_tune_tables_build_their_search_spaces(catalogue):
    """Each shipped tune table loads, and its space is exactly the parameters it lists."""
    from .conftest import REPO

    file = ExperimentFile.load(REPO / "experiments.toml")
    tuned = [name for name in file.names() if file.config(name).tune]
    assert {"quickstart", "paper"} <= set(tuned)
    for name in tuned:
        config = file.config(name)
        space = tuning.build_search_space(config, catalogue, f"experiments.{name}.tune")
        assert sorted(space.dimensions) == sorted(config.tune["search"])
