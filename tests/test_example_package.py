"""The example third-party feature package (examples/bionic-release-failure), installed the way
a user installs it — built by pip into a temporary directory, found through its
``bionic.features`` entry point — and used through the CLI: listed, run, ablated, tuned; and its
own test suite passes against the installed copy."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bionic_cli.app import app
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from bionic_core.host import DISABLE_ENV

from .conftest import REPO

EXAMPLE = REPO / "examples" / "bionic-release-failure"
NAME = "release_failure"
DIST = "bionic-release-failure 0.1.0"

EXPERIMENTS = """
[experiments.tiny_release]
dataset = "demo-small"
features = ["release_failure"]
params.release_failure.p = 0.7
hidden_sizes = [16]
batch_size = 64
epochs = 1
patience = 0
seeds = [0]
device = "cpu"
"""

runner = CliRunner()


@pytest.fixture(scope="session")
def example_site(tmp_path_factory) -> Path:
    """The example package built and installed by pip (offline, no dependencies) into a
    directory of its own — bionic's environment is left as it is."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed (it comes with bionic's `test` extra); the "
                    "example package cannot be built offline")
    root = tmp_path_factory.mktemp("example")
    source = root / "source"  # a copy: the build leaves build/ and *.egg-info/ behind
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns(
        "build", "*.egg-info", "__pycache__"))
    site = root / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--disable-pip-version-check", "--target", str(site),
         str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return site


@pytest.fixture
def installed(example_site, store, monkeypatch) -> Path:
    """A working directory whose Python sees the example package as installed, with its
    third-party plugins switched on and a tiny experiment that enables the feature."""
    monkeypatch.syspath_prepend(str(example_site))
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    (store / "exp.toml").write_text(EXPERIMENTS)
    return store


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def last_json(result) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_listed_with_its_source_order_touches_hooks_and_range(installed):
    features = {f["name"]: f for f in json.loads(invoke("plugins", "list", "--json").stdout)}
    listed = features[NAME]
    assert listed["source"] == DIST and listed["provenance"] == DIST
    assert (listed["order"], listed["touches"]) == (50, ["hidden activity"])
    assert listed["hooks"] == ["bionic_layer_activity"]
    assert listed["parameters"] == [{"name": "p", "type": "float", "default": 0.8,
                                     "help": listed["parameters"][0]["help"],
                                     "range": [0.5, 1.0], "log": False}]


def test_run_with_only_the_example_feature(installed):
    result = invoke("run", "tiny_release", "--experiments", "exp.toml", "--only", NAME,
                    "--set", f"{NAME}.p=0.6", "--json")
    summary = last_json(result)
    assert summary["status"] == "finished" and summary["epochs_run"] == 1
    run = MlflowClient(tracking_uri=f"sqlite:///{installed / 'mlflow.db'}").get_run(
        summary["run_id"])
    assert run.data.params[f"feature.{NAME}"] == "True"
    assert run.data.params[f"{NAME}.p"] == "0.6"
    assert run.data.params[f"feature.{NAME}.provenance"] == DIST


def test_ablated_leave_one_out(installed):
    result = invoke("ablate", "tiny_release", "--experiments", "exp.toml", "--seeds", "1",
                    "--json")
    runs = last_json(result)["runs"]
    assert len(runs) == 2 and {r["status"] for r in runs} == {"finished"}
    client = MlflowClient(tracking_uri=f"sqlite:///{installed / 'mlflow.db'}")
    flags = sorted(client.get_run(r["run_id"]).data.params[f"feature.{NAME}"] for r in runs)
    assert flags == ["False", "True"]  # the reference, and the reference without the feature


def test_tuned_over_its_declared_range(installed):
    result = invoke("tune", "tiny_release", "--experiments", "exp.toml", "--trials", "2",
                    "--search", f"{NAME}.p", "--sampler", "random", "--json")
    out = last_json(result)
    assert out["new_trials"] == [0, 1] and out["counts"] == {"complete": 2}
    import optuna

    study = optuna.load_study(study_name=out["study"], storage=f"sqlite:///{installed}/optuna.db")
    values = [t.params[f"{NAME}.p"] for t in study.trials]
    assert values[0] == 0.7  # the experiment's own value is tried first
    assert all(0.5 <= v <= 1.0 for v in values)


def test_its_own_tests_pass_against_the_installed_copy(example_site):
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join([str(example_site), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and "failed" not in done.stdout


def test_batched_with_other_runs_it_draws_what_it_draws_alone(example_site, monkeypatch):
    # The failures come from each run's own stream (normal_like), so the multi-model engine's
    # vmapped step gives every run its own draws: the losses of the runs trained alone.
    monkeypatch.syspath_prepend(str(example_site))
    feature = importlib.import_module("bionic_release_failure")
    from bionic_core.testing import catalogue_with, tiny_config, train_run
    from bionic_core.training.multimodel import train_many

    catalogue = catalogue_with(feature)
    configs = [tiny_config(features=(NAME,), params={NAME: {"p": 0.6}}, hidden_sizes=(16,),
                           seed=seed, epochs=2) for seed in (0, 1)]
    together = train_many(configs, catalogue, batched=True)
    for config, batched in zip(configs, together, strict=True):
        alone = train_run(config, catalogue)
        assert [r["train_loss"] for r in batched.history] == pytest.approx(
            [r["train_loss"] for r in alone.history], abs=1e-5)
