"""The answer of a sweep inside MLflow: its experiment tagged as model training, and its parent
run holding the comparison (markdown, HTML, Δ plot) and the key numbers as metrics."""

from __future__ import annotations

import json

from bionic_cli.app import app
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from bionic_core.studies.sweep_report import ARTIFACTS, metric_name
from bionic_core.studies.tracking import EXPERIMENT_KIND, UI_WORKFLOW

from .conftest import TINY_EXPERIMENTS

runner = CliRunner()


def ablate_tiny(store, seeds: int = 2) -> dict:
    """A two-configuration sweep (reference, -layer_norm); its JSON summary."""
    (store / "exp.toml").write_text(TINY_EXPERIMENTS)
    result = runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml", "--json",
                                 "--quiet", "--seeds", str(seeds)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_the_sweep_run_holds_the_comparison(store):
    summary = ablate_tiny(store, seeds=3)  # a p-value needs 3 seeds
    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    run = client.get_run(summary["sweep_run_id"])
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND[0]] == EXPERIMENT_KIND[1]
    assert set(ARTIFACTS) <= {a.path for a in client.list_artifacts(run.info.run_id)}
    metrics = run.data.metrics
    assert {"test_accuracy_reference", "test_accuracy_-layer_norm",
            "delta_-layer_norm", "p_-layer_norm"} <= set(metrics)
    assert abs(metrics["delta_-layer_norm"] - (metrics["test_accuracy_-layer_norm"]
                                               - metrics["test_accuracy_reference"])) < 1e-9
    local = client.download_artifacts(run.info.run_id, "comparison.md", str(store))
    table = open(local).read()
    assert "| -layer_norm |" in table and "Δ accuracy pp" in table
    page = open(client.download_artifacts(run.info.run_id, "comparison.html", str(store))).read()
    assert "<table>" in page and "-layer_norm" in page and "data:image/png;base64," in page


def test_the_report_says_where_mlflow_shows_it(store):
    (store / "exp.toml").write_text(TINY_EXPERIMENTS)
    result = runner.invoke(app, ["ablate", "tiny", "--experiments", "exp.toml", "--seeds", "1"])
    assert result.exit_code == 0, result.output
    assert f"?{UI_WORKFLOW}" in result.stderr and "#/experiments/" in result.stderr


def test_an_experiment_made_before_gets_the_tag(store):
    from bionic_core.studies.tracking import Tracker

    client = MlflowClient(f"sqlite:///{store / 'mlflow.db'}")
    old = client.create_experiment("old")
    Tracker().experiment_id("old")
    assert client.get_experiment(old).tags[EXPERIMENT_KIND[0]] == EXPERIMENT_KIND[1]


def test_metric_names_are_ones_mlflow_accepts():
    assert metric_name("delta", "-hebbian") == "delta_-hebbian"
    assert metric_name("delta", "+conv_frontend") == "delta__conv_frontend"
    assert metric_name("p", "a:b") == "p_a_b"
